//! An app shaped like H2O LLM Studio (llm_studio/ at the root and not installed, tests/src
//! and tests/integration with CUDA training tests the app does not mark, a real h2o-wave
//! app that is slow to import, static/, about.md, app.toml.template, Python 3.10 pins in
//! other files) driven the way a new user drives it: from the parent folder with a
//! relative `--project app` and a relative `--policy` (a copy whose PyTorch indexes point
//! at a loopback mirror), once with the binary `cargo xtask` runs and once from a `dist`
//! bundle. Real uv, real PyPI, real pytest, real h2o-wave.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// tiny torch wheels where the policy's PyTorch index for torch 2.8 would serve them:
/// CUDA 12.8 builds for Linux x86_64 and aarch64 (macOS torch comes from PyPI itself).
fn mirror() -> Indexes {
    let ix = Indexes::new();
    for plat in ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64"] {
        ix.add(
            "cu128",
            "torch",
            "2.8.0+cu128",
            &format!("cp312-cp312-{plat}"),
        );
    }
    ix
}

/// The workspace's policy with its CUDA 12.8 PyTorch index URL pointed at the mirror.
fn mirror_policy(ix: &Indexes) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml");
    let text = std::fs::read_to_string(path).unwrap();
    let parsed: toml::Value = toml::from_str(&text).unwrap();
    let url = parsed["indexes"]["pytorch-cu128"]["url"].as_str().unwrap();
    let out = text.replace(&format!("{url:?}"), &format!("{:?}", ix.index_url("cu128")));
    assert_ne!(out, text);
    out
}

struct Walk<'a> {
    /// The xtask binary: cargo's, or a dist bundle's bin/xtask.
    bin: &'a Path,
    /// The folder the user stands in; the app is `app/` inside it.
    parent: &'a Path,
    uv: &'a Path,
    py312: &'a Path,
}

impl Walk<'_> {
    fn app(&self) -> PathBuf {
        self.parent.join("app")
    }

    /// `xtask --project app --policy policy.toml ARGS`, from the parent folder.
    fn xt(&self, args: &[&str]) -> Command {
        let mut c = Command::new(self.bin);
        c.current_dir(self.parent)
            .args(["--project", "app", "--policy", "policy.toml"])
            .args(args)
            .env_remove("XTASK_PROJECT")
            .env_remove("XTASK_POLICY")
            .env_remove("DOCKER")
            .env_remove("H2O_WAVE_APP_ADDRESS")
            .env_remove("H2O_LLM_STUDIO_WORKDIR")
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_NO_CONFIG", "1");
        c
    }

    /// Run it: exit 0, and its stdout and stderr.
    fn ok(&self, args: &[&str]) -> (String, String) {
        let ran = Test::from(self.xt(args)).children_of(args[0]).expect(0);
        (ran.stdout(), ran.stderr())
    }

    fn all(&self) {
        self.port_and_lock();
        self.ok(&["setup-dev"]);
        self.tests();
        self.interrupted_tests();
        self.wave_wait();
        self.requirements();
        self.docker_dry_runs();
    }

    fn port_and_lock(&self) {
        let (out, err) = self.ok(&["port"]);
        assert!(out.contains("next: run `cargo xtask lock`"), "{out}");
        // The other files that still pin 3.10 are named, not changed.
        for pin in [
            ".python-version:1: 3.10",
            ".github/workflows/test.yml:11: python-version: \"3.10.11\" (3.10)",
            "Dockerfile:1: FROM registry.invalid/thirdparty-chainguard-python310",
        ] {
            assert!(err.contains(pin), "{pin}: {err}");
        }
        assert_eq!(
            std::fs::read_to_string(self.app().join(".python-version")).unwrap(),
            "3.10\n"
        );
        self.ok(&["port", "--check"]);
        // Locking finds the 3.12 interpreter itself (pyenv's, which uv cannot see).
        let (_, err) = self.ok(&["lock"]);
        assert!(err.contains("uv.lock is up to date"), "{err}");
        self.ok(&["lock", "--check"]);
        let (out, _) = self.ok(&["audit"]);
        assert_eq!(out.matches(", 0 missing").count(), 3, "{out}");
        let (out, _) = self.ok(&["validate", "--level", "1", "--json"]);
        let report: serde_json::Value = serde_json::from_str(&out).unwrap();
        let lock_check = report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"].as_str().unwrap_or("").contains("lock installs"))
            .unwrap_or_else(|| panic!("no lock check: {out}"));
        assert_eq!(lock_check["status"], "pass", "{out}");
    }

    fn last_line(out: &str) -> &str {
        out.lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("")
    }

    fn tests(&self) {
        let app = self.app();
        // PYTHONPATH is the project, so `llm_studio` imports although it is not installed;
        // the nine CUDA training tests are deselected and counted, the *_no_gpu test runs.
        let (out, err) = self.ok(&["test"]);
        assert_eq!(
            Self::last_line(&out),
            "7 passed, 0 failed, 0 errors, 0 skipped, 9 deselected",
            "{out}\n{err}"
        );
        assert!(
            out.contains("test_check_for_common_errors_no_gpu PASSED"),
            "{out}"
        );
        assert!(
            err.contains("named tests/integration/test_integration.py::test_oasst_training_gpu")
        );
        assert!(app.join("reports/junit.xml").is_file());
        assert!(!app.join("app").exists(), "reports written under app/app");

        let (out, _) = self.ok(&["test-unit"]);
        assert_eq!(
            Self::last_line(&out),
            "3 passed, 0 failed, 0 errors, 0 skipped, 13 deselected"
        );

        // What a CUDA node runs: exactly the nine GPU tests.
        let (out, _) = self.ok(&[
            "test",
            "--backend",
            "cuda",
            "--gpu-only",
            "--",
            "--collect-only",
            "-qq",
        ]);
        let ids: Vec<&str> = out.lines().filter(|l| l.contains("::")).collect();
        assert_eq!(ids.len(), 9, "{out}");
        assert!(ids.iter().all(|i| i.contains("_training_gpu[")), "{ids:?}");

        // Errors during collection: pytest says "Interrupted" and exits 2; that is a
        // failed check (exit 1) with the errors counted, not an interruption.
        let broken = app.join("tests/src/test_broken.py");
        std::fs::write(&broken, "import llm_studio.no_such_module\n").unwrap();
        let ran = Test::from(self.xt(&["test"])).children_of("test").expect(1);
        let (out, err) = (ran.stdout(), ran.stderr());
        assert_eq!(
            Self::last_line(&out),
            "0 passed, 0 failed, 1 errors, 0 skipped, 9 deselected"
        );
        assert!(
            err.contains("1 errors during collection (pytest exit 2)"),
            "{err}"
        );
        std::fs::remove_file(broken).unwrap();
    }

    /// Ctrl-C in the middle of a test: the terminal signals the whole foreground group.
    fn interrupted_tests(&self) {
        use std::os::unix::process::CommandExt;
        let mut child = self
            .xt(&["test", "--", "-k", "test_waits_when_asked"])
            .env("FIXTURE_TEST_SLEEP", "120")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_secs(6));
        rustix::process::kill_process_group(
            rustix::process::Pid::from_child(&child),
            rustix::process::Signal::INT,
        )
        .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130));
    }

    fn wave_wait(&self) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let started = Instant::now();
        let mut cmd = self.xt(&["wave", "--wait", "--port", &port.to_string()]);
        cmd.env("FIXTURE_IMPORT_SECONDS", "4");
        let (mut child, rx) = spawn_reading_stderr(&mut cmd);
        let mut seen = Vec::new();
        let ready = loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(l) if l.contains("ready: the app answers") => break l,
                Ok(l) => seen.push(l),
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("never ready: {seen:?}");
                }
            }
        };
        let took = started.elapsed();
        eprintln!("wave --wait: {ready} (test saw it after {took:.1?})");
        // The app imports for 4 s before it registers with waved and serves.
        assert!(took >= Duration::from_secs(4), "{ready}");
        let app_port: u16 = ready
            .split("the app server on 127.0.0.1:")
            .nth(1)
            .and_then(|r| r.split(' ').next())
            .and_then(|p| p.parse().ok())
            .expect(&ready);
        assert!(
            http_get(app_port).is_some(),
            "the app server does not answer"
        );
        let all = seen.join("\n");
        // The Wave private dir is absolute: the project, not `app` inside it.
        let app = self.app().canonicalize().unwrap();
        assert!(
            all.contains(&format!(
                "H2O_WAVE_PRIVATE_DIR=/download/@{}/output/download",
                app.display()
            )),
            "{all}"
        );
        signal(&child, rustix::process::Signal::INT);
        assert_eq!(child.wait().unwrap().code(), Some(130));
        std::thread::sleep(Duration::from_millis(300));
        assert!(http_get(port).is_none() && http_get(app_port).is_none());
    }

    fn requirements(&self) {
        let app = self.app();
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
        let (out, _) = self.ok(&["requirements"]);
        rustix::process::umask(old);
        assert!(out.contains("requirements.txt: "), "{out}");
        let file = app.join("requirements.txt");
        let body = std::fs::read_to_string(&file).unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o644, "a new file gets 0666 less the umask");
        }
        // torch per platform from its index, markers kept (macOS: PyPI, the default
        // index, so a plain pin); h2o-wave everywhere.
        assert!(
            body.contains("/cu128/files/torch-2.8.0+cu128-cp312-cp312-manylinux_2_28_aarch64.whl ; sys_platform == 'linux' and platform_machine == 'aarch64'"),
            "{body}"
        );
        assert!(
            body.contains(
                "\ntorch==2.8.0 ; sys_platform == 'darwin' and platform_machine == 'arm64'\n"
            ),
            "{body}"
        );
        assert!(
            body.lines()
                .any(|l| l.starts_with("h2o-wave==") && !l.contains(';'))
        );
        assert!(
            !body.contains("pytest"),
            "dev tools are not requirements: {body}"
        );
        for (target, triple) in [
            ("linux-x86_64-cuda", "x86_64-manylinux_2_28"),
            ("linux-aarch64-cuda", "aarch64-manylinux_2_28"),
            ("macos-arm64-mps", "aarch64-apple-darwin"),
        ] {
            let into = tempfile::tempdir().unwrap();
            let o = run(Command::new(self.uv)
                .args(["pip", "install", "--dry-run", "--python-platform", triple])
                .arg("--python")
                .arg(self.py312)
                .arg("--target")
                .arg(into.path())
                .arg("-r")
                .arg(&file)
                .env("UV_NO_CONFIG", "1"));
            let err = text(&o.stderr);
            assert!(o.status.success(), "{target}: {err}");
            assert!(err.contains("+ torch"), "{target}: {err}");
            assert!(err.contains("+ h2o-wave=="), "{target}: {err}");
            assert!(
                app.join("requirements")
                    .join(format!("{target}.txt"))
                    .is_file(),
                "{target}"
            );
        }
    }

    /// Dry runs and render start no docker process and create nothing: a docker client on
    /// PATH that records its calls records none.
    fn docker_dry_runs(&self) {
        let fake = tempfile::tempdir().unwrap();
        let calls = fake.path().join("calls");
        let script = fake.path().join("docker");
        std::fs::write(
            &script,
            format!("#!/bin/sh\necho \"$@\" >> '{}'\nexit 1\n", calls.display()),
        )
        .unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!(
            "{}:{}",
            fake.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let docker = |args: &[&str]| {
            let mut all = vec!["docker"];
            all.extend(args);
            Test::from(self.xt(&all))
                .env("PATH", &path)
                .expect(0)
                .stdout()
        };
        let out = docker(&["build", "cpu", "--dry-run"]);
        assert!(out.contains("-t h2o-llmstudio:cpu "), "{out}");
        let out = docker(&["build", "arm64-cuda", "--dry-run"]);
        assert!(
            out.contains("--platform linux/arm64") && out.contains("-t h2o-llmstudio:arm64-cuda"),
            "{out}"
        );
        // Then the start proof: the app's entry modules imported inside the image.
        assert!(
            out.contains("--entrypoint python3 -w /app h2o-llmstudio:arm64-cuda -c ")
                && out.trim_end().ends_with("start_proof.py)\" llm_studio.app"),
            "{out}"
        );
        let out = docker(&["run", "cpu", "--dry-run"]);
        assert!(
            out.contains("--shm-size 64g") && out.contains("h2o-llmstudio:cpu"),
            "{out}"
        );
        let out = docker(&["clean", "cpu", "--dry-run"]);
        assert!(out.contains("--filter ancestor=h2o-llmstudio:cpu"), "{out}");
        assert!(out.contains("rmi h2o-llmstudio:cpu"), "{out}");
        let out = docker(&["render", "amd64-cuda"]);
        assert!(out.contains("VERSION=1.14.9"), "{out}");
        assert!(
            !calls.exists(),
            "docker was called: {}",
            std::fs::read_to_string(&calls).unwrap_or_default()
        );
        assert!(!self.app().join("llmstudio_mnt").exists());
    }
}

/// A fresh copy of the fixture in `<tmp>/app`, with the mirror policy beside it.
fn user_folder(ix: &Indexes) -> tempfile::TempDir {
    let parent = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join("llmstudio/app"),
        &parent.path().join("app"),
    );
    std::fs::write(parent.path().join("policy.toml"), mirror_policy(ix)).unwrap();
    parent
}

#[cfg(unix)]
#[test]
fn the_app_from_its_parent_folder_with_cargo_xtask_and_a_dist_bundle() {
    let Some(uv) = find_uv() else { return };
    let Some(py312) = python("3.12") else { return };
    let ix = mirror();

    let parent = user_folder(&ix);
    Walk {
        bin: Path::new(env!("CARGO_BIN_EXE_xtask")),
        parent: parent.path(),
        uv: &uv,
        py312: &py312,
    }
    .all();

    // The same from a dist bundle: no cargo, the bundle's own templates/ and docker/.
    let out = tempfile::tempdir().unwrap();
    Test::new(["dist", "--profile", "dev", "--out"])
        .stderr_stream(CARGO)
        .arg(out.path())
        .expect(0);
    let bundle = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.is_dir())
        .unwrap();
    assert!(bundle.join("docker/Dockerfile").is_file());
    let parent = user_folder(&ix);
    Walk {
        bin: &bundle.join("bin/xtask"),
        parent: parent.path(),
        uv: &uv,
        py312: &py312,
    }
    .all();
}
