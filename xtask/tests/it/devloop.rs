//! The Makefile's dev loop in Rust, end to end with real uv, real PyPI and real pytest:
//! setup-dev (and its no-op stamp), test / test-unit with GPU tests deselected,
//! requirements checked by uv, wave --wait and Ctrl-C, and the bad inputs.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

struct Env {
    uv: PathBuf,
    py312: PathBuf,
}

fn env() -> Option<Env> {
    Some(Env {
        uv: find_uv()?,
        py312: python("3.12")?,
    })
}

/// xtask with the environment these tests need: no Python downloads, the test's uv cache.
fn xt(dir: &Path) -> Command {
    let mut c = xtask();
    c.arg("--project")
        .arg(dir)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_NO_CONFIG", "1");
    c
}

/// One run of [`xt`] with these arguments.
fn t<S: AsRef<std::ffi::OsStr>>(dir: &Path, args: impl IntoIterator<Item = S>) -> Test {
    let args: Vec<std::ffi::OsString> = args.into_iter().map(|a| a.as_ref().into()).collect();
    let command = args.first().and_then(|a| a.to_str()).unwrap_or_default();
    Test::from(xt(dir)).children_of(command).args(&args)
}

fn locked_fixture(e: &Env, fixture: &str) -> tempfile::TempDir {
    let dir = copy_fixture(fixture);
    lock(e, dir.path());
    dir
}

/// `uv lock` in `dir` with the test's Python.
fn lock(e: &Env, dir: &Path) {
    let o = run(Command::new(&e.uv)
        .arg("lock")
        .current_dir(dir)
        .env("UV_PYTHON", &e.py312)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_NO_CONFIG", "1"));
    assert!(o.status.success(), "uv lock: {}", text(&o.stderr));
}

#[test]
fn setup_dev_test_and_requirements() {
    let Some(e) = env() else { return };
    let dir = locked_fixture(&e, "devloop/app");
    let d = dir.path();

    // First run: uv sync, with the interpreter found in pyenv's versions folder (uv's
    // own discovery cannot see an inactive pyenv version).
    t(d, ["setup-dev"])
        .expect(0)
        .err_has("sync --frozen --group dev")
        .err_has("uv 0."); // which uv is shown
    assert!(d.join(".venv/.xtask-setup.json").is_file());
    // Nothing changed: no uv sync at all.
    t(d, ["setup-dev"])
        .expect(0)
        .err_has("up to date")
        .err_lacks("$ ");
    // --force, and any change to pyproject.toml, run uv again.
    t(d, ["setup-dev", "--force"]).expect(0).err_has("$ ");
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(d.join("pyproject.toml"))
        .unwrap();
    writeln!(f, "# touched").unwrap();
    t(d, ["setup-dev"]).expect(0).err_has("$ ");
    // Deleting the venv invalidates the stamp.
    std::fs::remove_dir_all(d.join(".venv")).unwrap();
    t(d, ["setup"]).expect(0).err_has("sync --frozen --no-dev");
    t(d, ["setup-dev"]).expect(0);

    // Tests: GPU tests deselected on this CPU host, summary line, reports.
    let ran = t(d, ["test"]).expect(0);
    ran.err_has("backend cpu: deselecting the GPU tests it cannot run (marked requires_gpu, requires_cuda, requires_mps");
    assert_eq!(
        ran.last_line(),
        "3 passed, 0 failed, 0 errors, 1 skipped, 3 deselected"
    );
    assert!(d.join("reports/junit.xml").is_file());
    let summary = |args: &[&str], code| t(d, args).expect(code).last_line();
    assert_eq!(
        summary(&["test-unit"], 0),
        "2 passed, 0 failed, 0 errors, 0 skipped, 5 deselected"
    );
    // Arguments after -- reach pytest.
    assert_eq!(
        summary(&["test", "--", "-k", "commutes"], 0),
        "1 passed, 0 failed, 0 errors, 0 skipped, 6 deselected"
    );

    // Exit codes: an unknown marker, no test selected, pytest usage error.
    t(d, ["test", "-m", "requires_tpu"])
        .expect(2)
        .one_line_error("unknown marker \"requires_tpu\"");
    t(d, ["test", "-m", "slow"])
        .expect(1)
        .err_has("no tests ran: all 7 collected tests were deselected (pytest exit 5)");
    t(d, ["test", "--", "--no-such-pytest-flag"])
        .expect(2)
        .err_has("(pytest exit 4)");

    // A failing test: exit 1, counted.
    let failing = d.join("tests/test_fails.py");
    std::fs::write(&failing, "def test_fails():\n    assert 1 == 2\n").unwrap();
    let ran = t(d, ["test"]).expect(1);
    ran.err_has("tests failed (pytest exit 1)");
    assert_eq!(
        ran.last_line(),
        "3 passed, 1 failed, 0 errors, 1 skipped, 3 deselected"
    );
    std::fs::remove_file(failing).unwrap();

    // requirements: one hashed file per target, each accepted by uv for its platform.
    t(d, ["requirements", "--group", "dev"]).expect(0);
    for (target, triple) in [
        ("linux-x86_64-cuda", "x86_64-manylinux_2_28"),
        ("linux-aarch64-cuda", "aarch64-manylinux_2_28"),
        ("macos-arm64-mps", "aarch64-apple-darwin"),
    ] {
        let file = d.join("requirements").join(format!("{target}.txt"));
        let body = std::fs::read_to_string(&file).unwrap();
        for needle in [&format!("# Target {target}:"), "pytest==", "--hash=sha256:"] {
            assert!(body.contains(needle), "{needle}: {body}");
        }
        let target_dir = tempfile::tempdir().unwrap();
        let mut uv = Command::new(&e.uv);
        uv.args([
            "pip",
            "install",
            "--dry-run",
            "--require-hashes",
            "--no-deps",
        ])
        .args(["--python-platform", triple])
        .arg("--python")
        .arg(&e.py312)
        .arg("--target")
        .arg(target_dir.path())
        .arg("-r")
        .arg(&file)
        .env("UV_NO_CONFIG", "1");
        Test::from(uv).expect(0).err_has("pytest");
    }
    t(d, ["requirements", "--format", "pylock"]).expect(0);
    let pylock: toml::Value =
        toml::from_str(&std::fs::read_to_string(d.join("requirements/pylock.toml")).unwrap())
            .unwrap();
    assert_eq!(pylock["lock-version"].as_str(), Some("1.0"));
    assert_eq!(pylock["environments"].as_array().unwrap().len(), 3);
}

/// Start `xtask wave --wait` and return it once it says the app is ready (the caller
/// waits for it), with the ready line and the time it took.
#[cfg(unix)]
#[allow(clippy::zombie_processes)]
fn start_wave(
    d: &Path,
    app: &str,
    port: u16,
    extra_env: &[(&str, String)],
) -> (std::process::Child, String, Duration) {
    let mut cmd = xt(d);
    cmd.args(["wave", "--wait", "--app", app, "--port", &port.to_string()]);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let (mut child, rx) = spawn_reading_stderr(&mut cmd);
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = Vec::new();
    loop {
        let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
        let Ok(line) = line else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("wave --wait never said the app is ready: {seen:?}");
        };
        if line.contains(&format!(
            "ready: the app answers on http://localhost:{port}"
        )) {
            return (child, line, started.elapsed());
        }
        seen.push(line);
    }
}

/// The app server's port from the ready line ("... the app server on 127.0.0.1:PORT ...").
pub fn app_server_port(ready: &str) -> u16 {
    let at = ready.find("the app server on 127.0.0.1:").expect(ready) + 28;
    ready[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

/// Ctrl-C (SIGINT to xtask only): the whole app stops, exit 130, the port closes.
#[cfg(unix)]
fn ctrl_c(mut child: std::process::Child, port: u16) {
    signal(&child, rustix::process::Signal::INT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        http_get(port).is_none(),
        "the app still answers after Ctrl-C"
    );
}

#[cfg(unix)]
#[test]
fn wave_waits_answers_and_stops_on_ctrl_c() {
    let Some(e) = env() else { return };
    let dir = locked_fixture(&e, "devloop/app");
    let d = dir.path();
    t(d, ["setup-dev"]).expect(0);
    let port = free_port();
    // The app takes 3 s to import, as H2O LLM Studio takes a minute and more: waved
    // answers at once, but the app is ready only once it has registered and serves.
    let (child, ready, took) = start_wave(
        d,
        "fixture_app.app",
        port,
        &[("FIXTURE_APP_IMPORT_SECONDS", "3".into())],
    );
    assert!(
        took >= Duration::from_secs(3),
        "ready after {took:?}: {ready}"
    );
    let body = http_get(port).expect("waved answers");
    assert!(body.contains("\"registered\": [\"/\"]"), "{body}");
    let app = http_get(app_server_port(&ready)).expect("the app server answers");
    assert!(app.contains("\"app\": \"fixture_app.app\""), "{app}");
    // The app got the Makefile's environment.
    assert!(
        body.contains("\"H2O_WAVE_APP_ACCESS_KEY_ID\": \"dev\""),
        "{body}"
    );
    assert!(
        body.contains("\"H2O_WAVE_MAX_REQUEST_SIZE\": \"25MB\""),
        "{body}"
    );
    assert!(
        body.contains(&format!(
            "\"H2O_WAVE_PRIVATE_DIR\": \"/download/@{}/output/download\"",
            d.display()
        )),
        "{body}"
    );

    // A second app on the same port is refused in one line.
    t(
        d,
        [
            "wave",
            "--app",
            "fixture_app.app",
            "--port",
            &port.to_string(),
        ],
    )
    .expect(2)
    .one_line_error(&format!("port {port} is already in use"));
    ctrl_c(child, port);
}

/// The tool's own stderr gone (its reader died) when it is told to stop: printing
/// fails, and still the app it started is stopped with it.
#[cfg(unix)]
#[test]
fn the_app_stops_even_when_stderr_is_gone() {
    let Some(e) = env() else { return };
    let dir = locked_fixture(&e, "devloop/app");
    let d = dir.path();
    t(d, ["setup-dev"]).expect(0);
    let port = free_port();
    let mut child = xt(d)
        .args([
            "wave",
            "--wait",
            "--app",
            "fixture_app.app",
            "--port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // A reader that stops at the ready line and then closes the only read end of the
    // tool's stderr.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if line.contains("ready: the app answers") {
                let _ = tx.send(());
                return;
            }
        }
    });
    if rx.recv_timeout(Duration::from_secs(120)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!("wave --wait never said the app is ready");
    }
    std::thread::sleep(Duration::from_millis(200));
    signal(&child, rustix::process::Signal::INT);
    let status = child.wait().unwrap();
    assert!(matches!(status.code(), Some(101 | 130)), "{status:?}");
    let gone = Instant::now() + Duration::from_secs(5);
    while http_get(port).is_some() && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(http_get(port).is_none(), "the app outlived the tool");
}

/// The real thing: h2o-wave from PyPI, whose `wave run` starts its bundled waved server
/// and the app; both stop on Ctrl-C.
#[cfg(unix)]
#[test]
fn real_h2o_wave_runs_and_stops() {
    let Some(e) = env() else { return };
    let dir = locked_fixture(&e, "devloop/wave-real");
    let d = dir.path();
    t(d, ["setup"]).expect(0);
    let port = free_port();
    let app_port = free_port();
    let (child, ready, _) = start_wave(
        d,
        "hwapp",
        port,
        &[(
            "H2O_WAVE_APP_ADDRESS",
            format!("http://127.0.0.1:{app_port}"),
        )],
    );
    let body = http_get(port).expect("waved answers");
    assert!(
        body.starts_with("HTTP/1.1 200") || body.starts_with("HTTP/1.0 200"),
        "{}",
        &body[..body.len().min(200)]
    );
    assert_eq!(app_server_port(&ready), app_port, "{ready}");
    assert!(
        http_get(app_port).is_some(),
        "the app server does not answer"
    );
    ctrl_c(child, port);
    assert!(
        http_get(app_port).is_none(),
        "the app server still answers after Ctrl-C"
    );
}

#[test]
fn dev_loop_bad_inputs() {
    // No project.
    Test::new(["setup-dev"]).expect(2).err_has("--project");

    // No lock.
    let dir = copy_fixture("devloop/app");
    t(dir.path(), ["setup-dev"])
        .expect(2)
        .one_line_error("uv.lock does not exist: run `cargo xtask lock`");
    let o = t(dir.path(), ["test"]).run();
    assert_ne!(o.code(), Some(0), "{o:?}");

    // uv absent and no pip to install it with.
    std::fs::write(
        dir.path().join("uv.lock"),
        "version = 1\nrevision = 3\nrequires-python = \"==3.12.*\"\n",
    )
    .unwrap();
    let tools = tempfile::tempdir().unwrap();
    let empty = tempfile::tempdir().unwrap();
    t(dir.path(), ["setup-dev"])
        .env("PATH", empty.path())
        .env("XTASK_TOOLS_DIR", tools.path())
        .expect(3)
        .err_has("uv is not on PATH")
        .err_has("no python3 to install it with pip");
}

/// uv missing from PATH: the pinned version is installed with pip into the tools folder.
#[test]
fn installs_uv_with_pip_when_absent() {
    let Some(_e) = env() else { return };
    let Some(shim) = which("python3") else { return };
    // The real interpreter behind any shim (a shim needs the rest of PATH).
    let real = run(Command::new(shim).args(["-c", "import sys; print(sys.executable)"]));
    let python = PathBuf::from(text(&real.stdout).trim());
    let dir = copy_fixture("devloop/app");
    std::fs::write(
        dir.path().join("uv.lock"),
        "version = 1\nrevision = 3\nrequires-python = \"==3.12.*\"\n",
    )
    .unwrap();
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&python, bin.path().join("python3")).unwrap();
    let tools = tempfile::tempdir().unwrap();
    let ran = t(dir.path(), ["setup-dev"])
        .env("PATH", bin.path())
        .env("XTASK_TOOLS_DIR", tools.path())
        .run();
    ran.err_has("uv is not on PATH: installing uv 0.13.9 with pip")
        .err_has("uv 0.13.9 (");
    assert!(tools.path().join("uv-0.13.9/bin/uv").is_file(), "{ran:?}");
}

/// The network down during sync: uv's own message is shown, exit 1, no stamp written.
#[test]
fn sync_failure_passes_uv_message_through() {
    let Some(e) = env() else { return };
    let dir = locked_fixture(&e, "devloop/app");
    let cache = tempfile::tempdir().unwrap();
    t(dir.path(), ["setup-dev"])
        .env("UV_OFFLINE", "1")
        .env("UV_CACHE_DIR", cache.path())
        .expect(1)
        .err_has("Network connectivity is disabled") // uv's own message
        .err_has("error: uv sync failed (exit");
    assert!(!dir.path().join(".venv/.xtask-setup.json").exists());
}

/// A package whose wheel never builds (an in-tree backend that refuses), with its metadata
/// static so that uv locks it: test data for an extra that fails at `uv sync`.
const UNBUILDABLE_PYPROJECT: &str = "[project]\nname = \"unbuildable\"\nversion = \"0.1.0\"\n\n[build-system]\nrequires = []\nbuild-backend = \"backend\"\nbackend-path = [\".\"]\n";
const UNBUILDABLE_BACKEND: &str = "import os\n\n\ndef get_requires_for_build_wheel(config_settings=None):\n    return []\n\n\ndef prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):\n    name = \"unbuildable-0.1.0.dist-info\"\n    os.makedirs(os.path.join(metadata_directory, name))\n    with open(os.path.join(metadata_directory, name, \"METADATA\"), \"w\") as f:\n        f.write(\"Metadata-Version: 2.1\\nName: unbuildable\\nVersion: 0.1.0\\n\")\n    return name\n\n\ndef build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n    raise SystemExit(\"unbuildable: this package never builds (test data)\")\n";

/// setup --extra: every extra in one `uv sync`; where that fails, the extra that cannot
/// install is found one by one, the others are installed together, and an asked extra
/// that failed is exit 1 naming it, with no stamp; an unknown extra is refused.
#[test]
fn extras_install_together_and_a_failing_one_is_named() {
    let Some(e) = env() else { return };
    let dir = copy_fixture("devloop/app");
    let d = dir.path();
    let py = d.join("pyproject.toml");
    let text = std::fs::read_to_string(&py).unwrap().replace(
        "flash = []\n",
        "flash = []\ngood = [\"iniconfig>=2\"]\nbroken = [\"unbuildable\"]\n\n[tool.uv.sources]\nunbuildable = { path = \"unbuildable\" }\n",
    );
    std::fs::write(&py, text).unwrap();
    std::fs::create_dir_all(d.join("unbuildable")).unwrap();
    std::fs::write(d.join("unbuildable/pyproject.toml"), UNBUILDABLE_PYPROJECT).unwrap();
    std::fs::write(d.join("unbuildable/backend.py"), UNBUILDABLE_BACKEND).unwrap();
    lock(&e, d);

    t(d, ["setup", "--extra", "nope"])
        .expect(2)
        .one_line_error("--extra nope: pyproject.toml has no such extra (it defines: ");
    let stamp = d.join(".venv/.xtask-setup.json");
    let site = d.join(".venv/lib/python3.12/site-packages");
    t(d, ["setup", "--extra", "good", "--extra", "broken"])
        .expect(1)
        .err_has("unbuildable: this package never builds") // uv's message, passed through
        .err_has("warning: the broken extra did not install (uv exited 1")
        .err_has(
            "error: --extra broken: did not install (uv's message is above); installed with: good",
        );
    assert!(
        site.join("iniconfig").is_dir(),
        "the good extra is installed"
    );
    assert!(!stamp.exists(), "a stamp was written for a failed run");

    t(d, ["setup", "--extra", "good"]).expect(0);
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&stamp).unwrap()).unwrap();
    assert_eq!(v["extras"], serde_json::json!(["good"]));
    t(d, ["setup", "--extra", "good"])
        .expect(0)
        .err_has("setup: up to date");
}
