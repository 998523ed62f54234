//! Every target of H2O LLM Studio's Makefile has its command, each run for real on an
//! app-shaped fixture from its parent folder: mypy and ruff from PyPI in the fixture's
//! environment (a passing and a failing case each), test-debug, the UI tests plain, headed
//! and against the app served by real h2o-wave, stop-llmstudio next to a process it must
//! not touch, bundles read back with Python's zipfile, clean on a scratch tree, the docs
//! site built with a real npm package, trivy absent; and README's table of Makefile
//! targets is complete.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::*;

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

    fn t(&self, args: &[&str]) -> Test {
        Test::from(self.xt(args)).children_of(args[0])
    }

    fn ok(&self, args: &[&str]) -> Ran {
        self.t(args).expect(0)
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

#[test]
fn style_format_and_test_debug() {
    let Some(app) = set_up() else { return };
    let dir = app.dir();

    // mypy: clean, then a type error.
    app.ok(&["style"]).out_has("Success: no issues found");
    assert!(
        std::fs::read_to_string(dir.join("reports/mypy.log"))
            .unwrap()
            .contains("Success: no issues found")
    );
    std::fs::write(dir.join("llm_studio/src/bad.py"), "count: int = \"one\"\n").unwrap();
    let ran = app.t(&["style"]).expect(1);
    ran.err_has("reports/mypy.log");
    let err = ran.stderr();
    assert!(
        err.trim_end()
            .lines()
            .last()
            .unwrap()
            .contains("Found 1 error"),
        "{err}"
    );
    std::fs::remove_file(dir.join("llm_studio/src/bad.py")).unwrap();

    // ruff at the version the lock pins: --check finds, format fixes, --check passes.
    std::fs::write(
        dir.join("llm_studio/src/messy.py"),
        "def  f( x ):\n    return x\n",
    )
    .unwrap();
    let ran = app.t(&["format", "--check"]).expect(1);
    ran.err_has("tool run ruff@0.14.5 format --check");
    let both = ran.stdout() + &ran.stderr();
    assert!(
        both.contains("Would reformat: llm_studio/src/messy.py"),
        "{both}"
    );
    app.ok(&["format"]);
    let messy = std::fs::read_to_string(dir.join("llm_studio/src/messy.py")).unwrap();
    assert_eq!(messy, "def f(x):\n    return x\n", "ruff formatted it");
    app.ok(&["format", "--check"]);

    // test-debug: one test by name, output not captured.
    assert_eq!(
        app.ok(&["test-debug", "test_chunks_rejects_zero"])
            .last_line(),
        "1 passed, 0 failed, 0 errors, 0 skipped, 15 deselected"
    );
    // test keeps the Makefile's reports: the run's output in reports/tests.log.
    app.ok(&["test-unit"]).out_has("test_chunks_splits PASSED");
    let log = std::fs::read_to_string(dir.join("reports/tests.log")).unwrap();
    assert!(log.contains("test_chunks_splits PASSED"), "{log}");
}

#[cfg(unix)]
#[test]
fn ui_tests_served_app_and_stop() {
    let Some(app) = set_up() else { return };
    let dir = app.dir();

    // Plain and headed (the Makefile's flags reach pytest).
    assert_eq!(
        app.ok(&["test-ui"]).last_line(),
        "2 passed, 0 failed, 0 errors, 0 skipped, 0 deselected"
    );
    assert!(dir.join("reports/junit_ui.xml").is_file());
    assert!(dir.join("reports/tests_ui.log").is_file());
    app.ok(&["test-ui", "--headed"])
        .out_has("ui: headed=True video=on screenshot=on slowmo=1000");

    // --serve: the app is up before the tests run and down afterwards, whatever they say.
    let port = free_port();
    app.ok(&["test-ui", "--serve", "--port", &port.to_string()])
        .err_has("ready after")
        .out_has("test_app_answers_at_the_base_url PASSED");
    assert!(http_get(port).is_none(), "the app still runs");
    let port = free_port();
    app.t(&["test-ui", "--serve", "--port", &port.to_string()])
        .env("FIXTURE_UI_FAIL", "1")
        .expect(1);
    assert!(
        http_get(port).is_none(),
        "the app still runs after failed tests"
    );

    // stop-llmstudio stops what this tool started, and only that.
    let port = free_port();
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
    let out = app
        .t(&["stop-llmstudio"])
        .filter(format!(r"\b{port}\b"), "[PORT]")
        .expect(0)
        .stdout();
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
    let port = free_port();
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
    app.t(&["stop-llmstudio", "--port", &port.to_string()])
        .filter(format!(r"\b{port}\b"), "[PORT]")
        .expect(0)
        .out_has("nothing to stop")
        .out_has("did not start; it was left alone");
    assert!(http_get(port).is_some(), "an unrelated server was stopped");
    let _ = other.kill();
    let _ = other.wait();
}

/// Lists a Wave bundle's members and prints its app.toml.
const UNZIP: &str = "import sys, zipfile\n\
z = zipfile.ZipFile(sys.argv[1])\n\
print(' '.join(z.namelist()))\n\
print(z.read('app.toml').decode())";

#[test]
fn bundles_clean_docs_and_scan() {
    let parent = app_folder();
    let app = App {
        parent,
        uv: PathBuf::new(),
    };
    let dir = app.dir();

    // bundles: the Wave bundle, read back with Python's zipfile, byte-identical twice.
    let out = app.ok(&["bundles"]).stdout();
    let wave = dir.join("bundles/ai.h2o.llmstudio.1.14.9.wave");
    assert!(
        out.starts_with(&format!("{}: ", wave.canonicalize().unwrap().display())),
        "{out}"
    );
    let first = std::fs::read(&wave).unwrap();
    let mut python = Command::new("python3");
    python.arg("-c").arg(UNZIP).arg(&wave);
    let listing = Test::from(python).expect(0);
    listing.out_has("Version = \"1.14.9\"");
    assert!(
        listing
            .stdout()
            .starts_with("about.md app.toml static/ static/logo.svg\n"),
        "{}",
        listing.stdout()
    );
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
    app.t(&["bundles"])
        .expect(2)
        .one_line_error("app.toml.template: cannot read");

    // clean: sizes said, a linked data folder loses the link only, dry run keeps all.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep.csv"), "a,b\n").unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.join("data")).unwrap();
    std::fs::create_dir_all(dir.join("output/exp1")).unwrap();
    std::fs::write(dir.join("output/exp1/checkpoint.pth"), vec![0u8; 2 << 20]).unwrap();
    app.ok(&["clean", "all", "--dry-run"])
        .out_has("output: would remove (1 files, 2.0 MiB)");
    assert!(dir.join("output").exists() && dir.join("data").exists());
    app.ok(&["clean", "data", "output", "env"])
        .out_has(".venv: nothing there")
        .out_has("data: removed the link")
        .out_has("output: removed (1 files, 2.0 MiB)");
    assert!(!dir.join("output").exists() && !dir.join("data").exists());
    assert!(
        outside.path().join("keep.csv").is_file(),
        "the link's target was touched"
    );
    app.t(&["clean", "everything"]).expect(2);

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
    app.t(&["docs", "build"])
        .env("PATH", empty.path())
        .expect(3)
        .err_has("node not found on PATH");
    std::fs::remove_dir_all(dir.join("documentation")).unwrap();
    app.t(&["docs", "build"])
        .expect(2)
        .err_has("documentation: no package.json");

    // mypy absent from the environment (none set up): exit 3, one line.
    app.t(&["style"])
        .expect(3)
        .one_line_error("mypy is not installed in");
    // No UI tests in the project: exit 2 naming where they belong.
    std::fs::remove_dir_all(dir.join("tests/ui")).unwrap();
    app.t(&["test-ui"])
        .expect(2)
        .one_line_error("tests/ui/test.py does not exist");

    // trivy: absent here → exit 3 with how to get it; the command it would run.
    app.t(&["docker", "scan", "amd64-cuda"])
        .env("PATH", empty.path())
        .expect(3)
        .err_has("trivy not found on PATH");
    // Under --json the dry run is one document too; trivy writes its report to a file the
    // scan's document embeds.
    let dry = app
        .ok(&["docker", "scan", "amd64-cuda", "--dry-run", "--json"])
        .stdout();
    let v: serde_json::Value = serde_json::from_str(&dry).expect("one JSON document");
    let shown = v["commands"][0].as_str().unwrap();
    assert!(
        shown.starts_with("trivy image --scanners vuln --severity CRITICAL,HIGH --timeout 60m --exit-code 1 --format json --output ")
            && shown.ends_with("/trivy.json h2o-llmstudio:amd64-cuda"),
        "{dry}"
    );
    assert_eq!(v["image"], "h2o-llmstudio:amd64-cuda");
    // DOCKER_IMAGE names the image, as in the Makefile.
    let out = app
        .t(&["docker", "scan", "cpu", "--dry-run"])
        .env("DOCKER_IMAGE", "example/llmstudio:nightly")
        .expect(0)
        .stdout();
    assert!(out.trim().ends_with(" example/llmstudio:nightly"), "{out}");
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
