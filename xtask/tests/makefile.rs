//! Every target of H2O LLM Studio's Makefile has its command, each run for real on an
//! app-shaped fixture from its parent folder: mypy and ruff from PyPI in the fixture's
//! environment (a passing and a failing case each), test-debug, the UI tests plain, headed
//! and against the app served by real h2o-wave, stop-llmstudio next to a process it must
//! not touch, bundles read back with Python's zipfile, clean on a scratch tree, the docs
//! site built with a real npm package, trivy absent; and README's table of Makefile
//! targets is complete.

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;

/// The fixture in `<tmp>/app`: the app-shaped package, static/, about.md and
/// app.toml.template from the llmstudio fixture, with this fixture's pyproject.toml (dev
/// tools), UI tests and documentation site.
fn app_folder() -> tempfile::TempDir {
    let parent = tempfile::tempdir().unwrap();
    let app = parent.path().join("app");
    copy_dir(&fixtures().join("llmstudio/app"), &app);
    copy_dir(&fixtures().join("makefile/app"), &app);
    for pin in [".python-version", "Dockerfile"] {
        std::fs::remove_file(app.join(pin)).unwrap();
    }
    parent
}

struct App {
    parent: tempfile::TempDir,
    uv: PathBuf,
}

impl App {
    fn dir(&self) -> PathBuf {
        self.parent.path().join("app")
    }

    fn xt(&self, args: &[&str]) -> Command {
        let mut c = xtask();
        c.current_dir(self.parent.path())
            .args(["--project", "app"])
            .args(args)
            .env("UV_PYTHON_DOWNLOADS", "never")
            .env("UV_NO_CONFIG", "1")
            .env_remove("DOCKER_IMAGE")
            .env_remove("LOG_LEVEL");
        c
    }

    fn run(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let o: Output = run(&mut self.xt(args));
        (o.status.code(), text(&o.stdout), text(&o.stderr))
    }

    fn ok(&self, args: &[&str]) -> (String, String) {
        let (code, out, err) = self.run(args);
        assert_eq!(code, Some(0), "{args:?}:\n{out}\n{err}");
        (out, err)
    }
}

fn set_up() -> Option<App> {
    let uv = find_uv()?;
    python("3.12")?;
    let app = App {
        parent: app_folder(),
        uv,
    };
    app.ok(&["lock"]);
    app.ok(&["setup-dev"]);
    Some(app)
}

fn last_line(s: &str) -> &str {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("")
}

#[test]
fn style_format_and_test_debug() {
    let Some(app) = set_up() else { return };
    let dir = app.dir();

    // mypy: clean, then a type error.
    let (out, _) = app.ok(&["style"]);
    assert!(out.contains("Success: no issues found"), "{out}");
    assert!(
        std::fs::read_to_string(dir.join("reports/mypy.log"))
            .unwrap()
            .contains("Success: no issues found")
    );
    std::fs::write(dir.join("llm_studio/src/bad.py"), "count: int = \"one\"\n").unwrap();
    let (code, _, err) = app.run(&["style"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        last_line(&err).contains("Found 1 error") && err.contains("reports/mypy.log"),
        "{err}"
    );
    std::fs::remove_file(dir.join("llm_studio/src/bad.py")).unwrap();

    // ruff at the version the lock pins: --check finds, format fixes, --check passes.
    std::fs::write(
        dir.join("llm_studio/src/messy.py"),
        "def  f( x ):\n    return x\n",
    )
    .unwrap();
    let (code, out, err) = app.run(&["format", "--check"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("tool run ruff@0.14.5 format --check"), "{err}");
    assert!(
        format!("{out}{err}").contains("Would reformat: llm_studio/src/messy.py"),
        "{out}{err}"
    );
    app.ok(&["format"]);
    let messy = std::fs::read_to_string(dir.join("llm_studio/src/messy.py")).unwrap();
    assert_eq!(messy, "def f(x):\n    return x\n", "ruff formatted it");
    app.ok(&["format", "--check"]);

    // test-debug: one test by name, output not captured.
    let (out, _) = app.ok(&["test-debug", "test_chunks_rejects_zero"]);
    assert_eq!(
        last_line(&out),
        "1 passed, 0 failed, 0 errors, 0 skipped, 15 deselected"
    );
    // test keeps the Makefile's reports: the run's output in reports/tests.log.
    let (out, _) = app.ok(&["test-unit"]);
    let log = std::fs::read_to_string(dir.join("reports/tests.log")).unwrap();
    assert!(log.contains("test_chunks_splits PASSED"), "{log}");
    assert!(out.contains("test_chunks_splits PASSED"), "{out}");
}

#[cfg(unix)]
#[test]
fn ui_tests_served_app_and_stop() {
    let Some(app) = set_up() else { return };
    let dir = app.dir();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };

    // Plain and headed (the Makefile's flags reach pytest).
    let (out, _) = app.ok(&["test-ui"]);
    assert_eq!(
        last_line(&out),
        "2 passed, 0 failed, 0 errors, 0 skipped, 0 deselected"
    );
    assert!(dir.join("reports/junit_ui.xml").is_file());
    assert!(dir.join("reports/tests_ui.log").is_file());
    let (out, _) = app.ok(&["test-ui", "--headed"]);
    assert!(
        out.contains("ui: headed=True video=on screenshot=on slowmo=1000"),
        "{out}"
    );

    // --serve: the app is up before the tests run and down afterwards, whatever they say.
    let port = free();
    let (out, err) = app.ok(&["test-ui", "--serve", "--port", &port.to_string()]);
    assert!(err.contains("ready after"), "{err}");
    assert!(
        out.contains("test_app_answers_at_the_base_url PASSED"),
        "{out}"
    );
    assert!(http_get(port).is_none(), "the app still runs");
    let port = free();
    let o = run(app
        .xt(&["test-ui", "--serve", "--port", &port.to_string()])
        .env("FIXTURE_UI_FAIL", "1"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        http_get(port).is_none(),
        "the app still runs after failed tests"
    );

    // stop-llmstudio stops what this tool started, and only that.
    let port = free();
    let mut llm = app
        .xt(&["llmstudio", "--wait", "--port", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = BufReader::new(llm.stderr.take().unwrap());
    let mut lines = err.lines().map_while(Result::ok);
    assert!(
        lines.any(|l| l.contains("ready: the app answers")),
        "llmstudio never became ready"
    );
    let (out, _) = app.ok(&["stop-llmstudio"]);
    assert!(
        out.starts_with(&format!(
            "stopped llm_studio.app on port {port} (process group "
        )),
        "{out}"
    );
    let status = llm.wait().unwrap();
    assert_eq!(status.code(), Some(0), "llmstudio after stop-llmstudio");
    assert!(lines.any(|l| l.contains("stopped by `cargo xtask stop-llmstudio`")));
    assert!(http_get(port).is_none());

    // A process this tool did not start keeps its port.
    let port = free();
    let mut other = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while http_get(port).is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let (out, _) = app.ok(&["stop-llmstudio", "--port", &port.to_string()]);
    assert!(
        out.contains("nothing to stop") && out.contains("did not start; it was left alone"),
        "{out}"
    );
    assert!(http_get(port).is_some(), "an unrelated server was stopped");
    let _ = other.kill();
    let _ = other.wait();
}

#[test]
fn bundles_clean_docs_and_scan() {
    let parent = app_folder();
    let app = App {
        parent,
        uv: PathBuf::new(),
    };
    let dir = app.dir();

    // bundles: the Wave bundle, read back with Python's zipfile, byte-identical twice.
    let (out, _) = app.ok(&["bundles"]);
    let wave = dir.join("bundles/ai.h2o.llmstudio.1.14.9.wave");
    assert!(
        out.starts_with(&format!("{}: ", wave.canonicalize().unwrap().display())),
        "{out}"
    );
    let first = std::fs::read(&wave).unwrap();
    let o = run(Command::new("python3")
        .arg("-c")
        .arg(
            "import sys, zipfile\n\
         z = zipfile.ZipFile(sys.argv[1])\n\
         print(' '.join(z.namelist()))\n\
         print(z.read('app.toml').decode())",
        )
        .arg(&wave));
    let listing = text(&o.stdout);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        listing.starts_with("about.md app.toml static/ static/logo.svg\n"),
        "{listing}"
    );
    assert!(listing.contains("Version = \"1.14.9\""), "{listing}");
    std::thread::sleep(Duration::from_millis(1100));
    std::fs::write(
        dir.join("about.md"),
        std::fs::read(dir.join("about.md")).unwrap(),
    )
    .unwrap();
    app.ok(&["bundles"]);
    assert_eq!(
        std::fs::read(&wave).unwrap(),
        first,
        "bundles are reproducible"
    );
    std::fs::remove_file(dir.join("app.toml.template")).unwrap();
    let (code, _, err) = app.run(&["bundles"]);
    assert_eq!(code, Some(2));
    assert!(
        err.lines().count() == 1 && err.contains("app.toml.template: cannot read"),
        "{err}"
    );

    // clean: sizes said, a linked data folder loses the link only, dry run keeps all.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep.csv"), "a,b\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("output/exp1")).unwrap();
    std::fs::write(dir.join("output/exp1/checkpoint.pth"), vec![0u8; 2 << 20]).unwrap();
    let (out, _) = app.ok(&["clean", "all", "--dry-run"]);
    assert!(
        out.contains("output: would remove (1 files, 2.0 MiB)"),
        "{out}"
    );
    assert!(dir.join("output").exists() && dir.join("data").exists());
    let (out, _) = app.ok(&["clean", "data", "output", "env"]);
    assert!(out.contains(".venv: nothing there"), "{out}");
    assert!(out.contains("data: removed the link"), "{out}");
    assert!(out.contains("output: removed (1 files, 2.0 MiB)"), "{out}");
    assert!(!dir.join("output").exists() && !dir.join("data").exists());
    assert!(
        outside.path().join("keep.csv").is_file(),
        "the link's target was touched"
    );
    let (code, _, err) = app.run(&["clean", "everything"]);
    assert_eq!(code, Some(2), "{err}");

    // docs: npm install and build with a real package from the registry.
    if which("npm").is_none() {
        skip_or_fail("npm", "npm is not on PATH (apt-get install nodejs npm)");
    } else {
        app.ok(&["docs", "setup"]);
        app.ok(&["docs", "build"]);
        let page = std::fs::read_to_string(dir.join("documentation/build/index.html")).unwrap();
        assert!(page.contains("is-number(42): true"), "{page}");
    }
    let empty = tempfile::tempdir().unwrap();
    let o = run(app.xt(&["docs", "build"]).env("PATH", empty.path()));
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).contains("node not found on PATH"),
        "{}",
        text(&o.stderr)
    );
    std::fs::remove_dir_all(dir.join("documentation")).unwrap();
    let (code, _, err) = app.run(&["docs", "build"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("documentation: no package.json"), "{err}");

    // mypy absent from the environment (none set up): exit 3, one line.
    let (code, _, err) = app.run(&["style"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(
        err.lines().count() == 1 && err.contains("mypy is not installed in"),
        "{err}"
    );
    // No UI tests in the project: exit 2 naming where they belong.
    std::fs::remove_dir_all(dir.join("tests/ui")).unwrap();
    let (code, _, err) = app.run(&["test-ui"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.lines().count() == 1 && err.contains("tests/ui/test.py does not exist"),
        "{err}"
    );

    // trivy: absent here → exit 3 with how to get it; the command it would run.
    let o = run(app
        .xt(&["docker", "scan", "amd64-cuda"])
        .env("PATH", empty.path()));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains("trivy not found on PATH"));
    let (out, _) = app.ok(&["docker", "scan", "amd64-cuda", "--dry-run", "--json"]);
    assert_eq!(
        out.trim(),
        "trivy image --scanners vuln --severity CRITICAL,HIGH --timeout 60m --exit-code 1 --format json h2o-llmstudio:amd64-cuda"
    );
    // DOCKER_IMAGE names the image, as in the Makefile.
    let o = run(app
        .xt(&["docker", "scan", "cpu", "--dry-run"])
        .env("DOCKER_IMAGE", "example/llmstudio:nightly"));
    assert!(
        text(&o.stdout)
            .trim()
            .ends_with(" example/llmstudio:nightly")
    );
    let _ = app.uv;
}

/// README's table of Makefile targets names every target (from a list of the real
/// Makefile's targets kept in the fixtures; checked against the real one when present).
#[test]
fn readme_maps_every_makefile_target() {
    let list = std::fs::read_to_string(fixtures().join("makefile/Makefile.targets")).unwrap();
    let targets: Vec<&str> = list
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .collect();
    let reference = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/reference/h2o-llmstudio-main/Makefile");
    if let Ok(real) = std::fs::read_to_string(&reference) {
        let mut real: Vec<&str> = real
            .lines()
            .filter_map(|l| l.split_once(':').map(|(t, _)| t))
            .filter(|t| {
                !t.is_empty()
                    && t.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            })
            .collect();
        real.sort();
        let mut ours = targets.clone();
        ours.sort();
        assert_eq!(
            real,
            ours,
            "the fixture's target list drifted from {}",
            reference.display()
        );
    }
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let table = readme
        .split("### From the app's Makefile")
        .nth(1)
        .and_then(|t| t.split("\n\n").nth(1))
        .expect("README has the Makefile table");
    let firsts: Vec<&str> = table
        .lines()
        .skip(2)
        .filter_map(|l| l.split('|').nth(1))
        .collect();
    for t in targets {
        assert!(
            firsts.iter().any(|c| c.contains(&format!("`{t}`"))),
            "README's Makefile table has no row for `{t}`"
        );
    }
}
