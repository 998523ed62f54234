//! End-to-end tests of the `cargo xtask` binary: the CLI surface and `platform`.

#[cfg(target_os = "linux")]
use std::path::{Path, PathBuf};

use crate::support::{HOST, Test, xtask};

// nvidia-smi's recordings: only Linux has NVIDIA's tools.
#[cfg(target_os = "linux")]
fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/platform")
        .join(name)
}

#[test]
fn no_arguments_lists_each_command_once() {
    let out = Test::from(xtask()).expect(0).stdout();
    let commands: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(commands.contains(&"platform"), "{out}");
    assert!(commands.contains(&"ci"), "{out}");
    // Every listed command exists: its --help succeeds, and says what it said when its
    // snapshot was reviewed (a flag added, dropped or moved to another action shows here).
    let subcommands: &[(&str, &[&str])] = &[
        (
            "docker",
            &["build", "run", "clean", "render", "scan", "push"],
        ),
        ("fleet", &["validate", "render", "merge"]),
        ("policy", &["check"]),
    ];
    for c in &commands {
        Test::new([c, "--help"])
            .expect(0)
            .snapshot(&format!("help-{c}"));
        for (_, subs) in subcommands.iter().filter(|(name, _)| name == c) {
            for sub in *subs {
                Test::new([c, sub, "--help"])
                    .expect(0)
                    .snapshot(&format!("help-{c}-{sub}"));
            }
        }
    }
    Test::from(xtask()).expect(0).snapshot("commands");
    // The Makefile's targets and the commands around them show how they are called.
    for c in [
        "port",
        "lock",
        "test",
        "test-debug",
        "test-ui",
        "wave",
        "stop-llmstudio",
        "requirements",
        "style",
        "format",
        "bundles",
        "clean",
        "docs",
        "docker",
    ] {
        assert!(commands.contains(&c), "{c} is not listed: {out}");
        Test::new([c, "--help"])
            .expect(0)
            .out_has("Examples:\n  cargo xtask ");
    }
}

#[test]
fn unknown_command_is_one_line_exit_2() {
    Test::new(["platfrom"])
        .expect(2)
        .one_line_error("unrecognized subcommand 'platfrom'")
        .err_has("'platform'"); // the suggestion
}

#[test]
fn unknown_flag_is_one_line_exit_2() {
    Test::new(["platform", "--jsn"])
        .expect(2)
        .one_line_error("--jsn");
}

#[test]
fn missing_project_names_the_flag() {
    let ran = Test::in_project("/nonexistent", ["platform"]).expect(2);
    ran.one_line_error("--project /nonexistent");
    assert!(ran.out.stdout.is_empty());

    // The same through the environment variable.
    Test::new(["platform"])
        .env("XTASK_PROJECT", "/nonexistent")
        .expect(2);

    // A folder without pyproject.toml is not a project either.
    let empty = tempfile::tempdir().unwrap();
    Test::in_project(empty.path(), ["platform"])
        .expect(2)
        .err_has("no pyproject.toml");
}

#[test]
fn platform_json_describes_this_machine() {
    let v = Test::new(["platform", "--json"])
        .stream(HOST)
        .expect(0)
        .json();
    for key in [
        "os", "arch", "arch_raw", "target", "backend", "gpus", "tools", "warnings",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    let arch = v["arch"].as_str().unwrap();
    assert!(arch == "x86_64" || arch == "aarch64", "{arch}");
    if v["os"] == "linux" {
        assert_eq!(v["target"], format!("linux-{arch}-cuda"));
    }
    assert!(["cuda", "mps", "cpu"].contains(&v["backend"].as_str().unwrap()));
    assert!(v["tools"]["pythons"].is_array());
    assert!(v["tools"]["docker"]["clients"].is_array());
    // The build that answered names its own target; natively nothing is emulated.
    let built = v["binary"]["target"].as_str().unwrap();
    assert!(built.starts_with(std::env::consts::ARCH), "{built}");
    assert!(
        v["binary"].get("bundle").is_none(),
        "not run from a bundle: {v}"
    );
    assert!(v.get("emulation").is_none(), "{v}");
}

#[test]
fn platform_table_and_output_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("platform.json");
    let table = Test::new(["platform", "--output"])
        .arg(&file)
        .stream(HOST)
        .expect(0)
        .stdout();
    for key in [
        "os", "arch", "target", "backend", "uv", "python", "docker", "nvcc",
    ] {
        assert!(
            table.lines().any(|l| l.starts_with(key)),
            "row {key} missing:\n{table}"
        );
    }
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert!(saved["target"].is_string());

    Test::new(["platform", "--output", "/nonexistent-dir/p.json"])
        .expect(2)
        .err_has("--output /nonexistent-dir/p.json");
}

/// Write an executable that prints a recorded output, to stand in for a tool this
/// machine lacks (the recording is the test data; the parser and binary are real).
#[cfg(target_os = "linux")]
fn recorded_tool(dir: &Path, name: &str, recording: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let body = format!(
        "#!/bin/sh\ncase \"$1\" in --query-gpu=*) exec cat '{}';; esac\nexit 0\n",
        recording.display()
    );
    std::fs::write(&path, body).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[cfg(target_os = "linux")]
fn with_recorded_nvidia_smi(recording: &str) -> crate::support::Ran {
    let bin = tempfile::tempdir().unwrap();
    recorded_tool(bin.path(), "nvidia-smi", &fixture(recording));
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Test::new(["platform", "--json"])
        .env("PATH", path)
        .stream(HOST)
        .expect(0)
}

#[cfg(all(unix, target_os = "linux"))]
#[test]
fn malformed_nvidia_smi_is_a_warning_not_a_crash() {
    let ran = with_recorded_nvidia_smi("nvidia-smi-malformed.csv");
    let err = ran.stderr();
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{err}");
    assert!(warnings[0].contains("nvidia-smi line 2"), "{err}");
    let v = ran.json();
    assert_eq!(v["gpus"].as_array().unwrap().len(), 2);
    assert_eq!(v["warnings"].as_array().unwrap().len(), 2);
    if v["cuda"]["libcuda_loadable"] == false {
        // GPUs listed but no driver library: not a CUDA host, and the evidence says why.
        assert_eq!(v["backend"], "cpu");
        assert!(
            v["backend_evidence"][0]
                .as_str()
                .unwrap()
                .contains("libcuda cannot be loaded")
        );
    }
}

#[cfg(all(unix, target_os = "linux"))]
#[test]
fn eight_gpu_node_is_listed() {
    let v = with_recorded_nvidia_smi("nvidia-smi-8gpu.csv").json();
    let gpus = v["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 8);
    assert_eq!(gpus[7]["index"], 7);
    assert_eq!(gpus[0]["compute_capability"], "9.0");
    assert!(v["warnings"].as_array().unwrap().is_empty());
}

/// How many JSON documents `text` holds, one after another (None when something else is
/// there too).
fn json_documents(text: &str) -> Option<usize> {
    let mut n = 0;
    for doc in serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>() {
        doc.ok()?;
        n += 1;
    }
    Some(n)
}

/// A sweep case's snapshot name: its arguments, a path by its last part (a temporary
/// folder or this checkout's place must not name a file).
fn case_name(args: &[&str]) -> String {
    args.iter()
        .map(|a| match a.strip_prefix('/') {
            Some(path) => path.rsplit('/').next().unwrap_or(path),
            None => a,
        })
        .collect::<Vec<_>>()
        .join("-")
        .replace(' ', "_")
}

/// The JSON contract, swept: every command that takes --json, through success, a usage
/// error (a bad value, a bad flag, an unknown target), a missing engine and a failing
/// check, prints exactly one JSON document on stdout, whatever its exit code.
#[test]
fn every_json_path_prints_exactly_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    crate::support::copy_dir(&crate::support::fixtures().join("fuzz"), &app);
    let fleet = crate::support::fixtures().join("fleet/gh200");
    let empty = tempfile::tempdir().unwrap();
    let fleet_dir = fleet.to_str().unwrap();
    // A bundle's shape (bin/xtask beside templates/platforms.toml), for fleet validate to
    // get as far as the scheduler.
    let bundle = dir.path().join("bundle");
    std::fs::create_dir_all(bundle.join("bin")).unwrap();
    std::fs::create_dir_all(bundle.join("templates")).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_xtask"), bundle.join("bin/xtask")).unwrap();
    let ws = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(
        ws.join("templates/platforms.toml"),
        bundle.join("templates/platforms.toml"),
    )
    .unwrap();
    let bundle = bundle.to_str().unwrap();
    // (arguments, exit code, PATH emptied)
    let cases: &[(&[&str], i32, bool)] = &[
        (&["platform", "--json"], 0, false),
        (&["matrix", "--json"], 0, false),
        (&["audit", "--json"], 0, false),
        (&["audit", "--json", "--gpu", "Thor"], 1, false),
        (&["audit", "--json", "--target", "riscv-cuda"], 2, false),
        (&["audit", "--json", "--gpu", "no such gpu"], 2, false),
        (&["port", "--check", "--json"], 1, false),
        (&["workflow", "--check", "--json"], 1, false),
        (&["validate", "--level", "1", "--json"], 0, false),
        (&["validate", "--level", "9", "--json"], 2, false),
        (&["validate", "--json", "--no-such-flag"], 2, false),
        (&["fleet", "merge", "--json", fleet_dir], 1, false),
        (
            &["fleet", "merge", "--json", "/nonexistent/reports"],
            2,
            false,
        ),
        (&["policy", "check", "--json", "--last", "0"], 2, false),
        (&["bench", "--json", "--runs", "x"], 2, false),
        (&["fleet", "validate", "--json", "--nodes", "0"], 2, false),
        (
            &[
                "fleet", "validate", "--json", "--nodes", "2", "--bundle", bundle,
            ],
            3,
            true,
        ),
        (&["docker", "scan", "amd64-cuda", "--json"], 3, true),
        (
            &["docker", "scan", "amd64-cuda", "--json", "--dry-run"],
            0,
            false,
        ),
        (&["docker", "build", "amd64-cuda", "--json"], 2, false),
    ];
    let mut table = String::new();
    for (args, code, no_path) in cases {
        let mut t = crate::support::Test::from(crate::support::xtask())
            .project(&app)
            .args(*args);
        if *no_path {
            t = t.env("PATH", empty.path());
        }
        // A refusal is one line and one document, whole; so is every other case but this
        // machine's own report. Named by its arguments: a case added to the table renames
        // no other snapshot.
        let refusal = *code == 2;
        let host = !refusal && (args[0] == "platform" || args[0] == "validate");
        if host {
            t = t.stream(HOST);
        }
        let ran = t.expect(*code);
        if !host {
            let kind = if refusal { "refusal" } else { "sweep" };
            ran.snapshot(&format!("json-{kind}-{}", case_name(args)));
        }
        let docs = json_documents(&ran.stdout());
        table.push_str(&format!("{args:?} → exit {code}, {docs:?} document(s)\n"));
        assert_eq!(
            docs,
            Some(1),
            "{args:?}: stdout is not one JSON document:\n{}",
            ran.stdout()
        );
        let v: serde_json::Value = serde_json::from_str(&ran.stdout()).unwrap();
        if *code == 2 || *code == 3 {
            assert_eq!(v["error"]["code"], *code, "{args:?}: {v}");
            assert!(
                v["error"]["message"]
                    .as_str()
                    .is_some_and(|m| !m.is_empty())
            );
        }
    }
    eprintln!("{table}");
}
