//! `audit` on hand-written locks: the statuses, the JSON shape, and one clear line with
//! exit 2 for each kind of bad input.

use std::path::Path;

use crate::support::*;

const PYPROJECT: &str = r#"[project]
name = "tiny"
version = "0.1.0"
requires-python = "==3.12.*"
dependencies = ["alpha", "beta ; sys_platform == 'linux'"]

[dependency-groups]
dev = ["gamma"]
"#;

/// A lock in uv's format with a placeholder registry host.
const LOCK: &str = r#"version = 1
revision = 3
requires-python = "==3.12.*"

[[package]]
name = "alpha"
version = "1.0"
source = { registry = "https://registry.invalid/simple" }
dependencies = [{ name = "delta", marker = "platform_machine == 'x86_64'" }]
wheels = [{ url = "https://files.registry.invalid/alpha-1.0-py3-none-any.whl" }]

[[package]]
name = "beta"
version = "2.0"
source = { registry = "https://registry.invalid/simple" }
wheels = [{ url = "https://files.registry.invalid/beta-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" }]

[[package]]
name = "delta"
version = "3.0"
source = { registry = "https://registry.invalid/simple" }
sdist = { url = "https://files.registry.invalid/delta-3.0.tar.gz" }

[[package]]
name = "gamma"
version = "4.0"
source = { registry = "https://registry.invalid/simple" }
wheels = [{ url = "https://files.registry.invalid/gamma-4.0-cp38-abi3-macosx_11_0_arm64.whl" }, { url = "https://files.registry.invalid/gamma-4.0-cp38-abi3-manylinux_2_28_x86_64.whl" }]

[[package]]
name = "tiny"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "alpha" },
    { name = "beta", marker = "sys_platform == 'linux'" },
]

[package.dev-dependencies]
dev = [{ name = "gamma" }]

[package.metadata]
requires-dist = [
    { name = "alpha" },
    { name = "beta", marker = "sys_platform == 'linux'" },
]

[package.metadata.requires-dev]
dev = [{ name = "gamma" }]
"#;

fn project(lock: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pyproject.toml"), PYPROJECT).unwrap();
    if let Some(l) = lock {
        std::fs::write(dir.path().join("uv.lock"), l).unwrap();
    }
    dir
}

fn audit(dir: &Path, args: &[&str]) -> Test {
    Test::in_project(dir, ["audit"]).args(args)
}

fn statuses(v: &serde_json::Value, target: &str) -> Vec<(String, String)> {
    let t = v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == target)
        .unwrap();
    assert_eq!(t["python"], "3.12");
    let mut out: Vec<(String, String)> = t["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().to_string(),
                p["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn statuses_per_target() {
    let dir = project(Some(LOCK));
    // gamma has no aarch64 Linux wheel; beta none at all for aarch64.
    // The whole text and Markdown reports, as reviewed.
    audit(dir.path(), &[]).expect(1).snapshot("audit-tiny");
    audit(dir.path(), &["--markdown"])
        .expect(1)
        .snapshot("audit-tiny-markdown");
    let v = audit(dir.path(), &["--json"]).expect(1).json();
    assert_eq!(
        statuses(&v, "linux-x86_64-cuda"),
        pairs(&[
            ("alpha", "wheel"),
            ("beta", "wheel"),
            ("delta", "build"),
            ("gamma", "wheel")
        ])
    );
    assert_eq!(
        statuses(&v, "linux-aarch64-cuda"),
        pairs(&[
            ("alpha", "wheel"),
            ("beta", "missing"),
            ("delta", "excluded"),
            ("gamma", "missing")
        ])
    );
    assert_eq!(
        statuses(&v, "macos-arm64-mps"),
        pairs(&[
            ("alpha", "wheel"),
            ("beta", "excluded"),
            ("delta", "excluded"),
            ("gamma", "wheel")
        ])
    );
    let x86 = &v["targets"][0]["packages"];
    let beta = x86
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "beta")
        .unwrap();
    assert_eq!(
        beta["wheel"],
        "beta-2.0-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    );
    assert_eq!(beta["version"], "2.0");

    // Without the dev group, gamma is not installed; only x86_64 and macOS pass.
    let ran = audit(dir.path(), &["--no-dev", "--target", "macos-arm64-mps"])
        .args(["--target", "amd64-cuda"])
        .expect(0);
    ran.out_has("linux-x86_64-cuda (Python 3.12): installs")
        .out_has("build    delta 3.0: sdist only");
    assert!(!ran.stdout().contains("aarch64"), "{ran:?}");

    audit(dir.path(), &["--markdown", "--target", "linux-aarch64-cuda"])
        .expect(1)
        .out_has("### `linux-aarch64-cuda` (Python 3.12)")
        .out_has("| beta | 2.0 | missing | wheels only for manylinux_2_17_x86_64, manylinux2014_x86_64; no sdist |")
        .err_has("no installable file for: beta 2.0 on linux-aarch64-cuda");
}

#[test]
fn stale_lock_is_a_warning() {
    let dir = project(Some(LOCK));
    std::fs::write(
        dir.path().join("pyproject.toml"),
        PYPROJECT.replace("\"alpha\", ", "\"alpha>=1\", \"epsilon\", "),
    )
    .unwrap();
    audit(dir.path(), &["--no-dev", "--target", "amd64-cuda"])
        .expect(0)
        .err_has("warning: uv.lock is stale: dependencies changed since the lock was made: alpha, epsilon (not in the lock); run `cargo xtask lock`");
}

fn expect_bad(dir: &Path, args: &[&str], needle: &str) {
    let ran = audit(dir, args).expect(2);
    ran.one_line_error(needle);
    assert!(ran.out.stdout.is_empty(), "{ran:?}");
}

#[test]
fn bad_input_is_one_line() {
    let dir = project(None);
    expect_bad(dir.path(), &[], "uv.lock: cannot read");
    expect_bad(dir.path(), &[], "run `cargo xtask lock`");

    let dir = project(Some("version = 1\n[[package]\nname = \"x\"\n"));
    expect_bad(dir.path(), &[], "uv.lock:2:");

    let dir = project(Some("version = 7\n"));
    expect_bad(dir.path(), &[], "lock version 7 is not supported");

    let dir = project(Some(
        &LOCK
            .replace("name = \"tiny\"", "name = \"other\"")
            .replace("virtual = \".\"", "virtual = \"../other\""),
    ));
    expect_bad(dir.path(), &[], "no package for the project \"tiny\"");

    let dir = project(Some(LOCK));
    expect_bad(
        dir.path(),
        &["--target", "windows"],
        "unknown target \"windows\"",
    );
    expect_bad(dir.path(), &["--python", "three"], "--python three");
    expect_bad(
        dir.path(),
        &["--group", "docs"],
        "--group docs: Group `docs` is not defined in the project's `dependency-groups` table (it has: dev)",
    );
    expect_bad(
        dir.path(),
        &["--extra", "gpu"],
        "--extra gpu: Extra `gpu` is not defined in the `optional-dependencies` table for `tiny` (it has: none)",
    );
}

/// `validate --level 1` on a lock: its exit code and the "lock installs here" check.
#[cfg(target_os = "linux")]
fn lock_check(lock: &str) -> (Option<i32>, serde_json::Value, String) {
    let dir = project(Some(lock));
    let ran = Test::in_project(dir.path(), ["validate", "--level", "1", "--json"])
        .stream(HOST)
        .run();
    let v = ran.json();
    let check = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "lock installs here")
        .cloned()
        .unwrap();
    (ran.code(), check, ran.stderr())
}

/// validate's level 1 runs the same verdict for this host's target.
#[cfg(target_os = "linux")]
#[test]
fn validate_judges_the_lock_for_this_host() {
    let (here, other) = if std::env::consts::ARCH == "aarch64" {
        ("aarch64", "x86_64")
    } else {
        ("x86_64", "aarch64")
    };
    let wheel = "manylinux_2_17_x86_64.manylinux2014_x86_64";
    let (code, check, err) = lock_check(&LOCK.replace(wheel, &format!("manylinux_2_17_{other}")));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(check["status"], "fail", "{check}");
    assert!(
        check["reason"].as_str().unwrap().contains("beta 2.0"),
        "{check}"
    );
    assert!(err.contains("failed: platform lock installs here"), "{err}");

    let lock = LOCK
        .replace(wheel, &format!("manylinux_2_17_{here}"))
        .replace(
            "gamma-4.0-cp38-abi3-manylinux_2_28_x86_64",
            &format!("gamma-4.0-cp38-abi3-manylinux_2_28_{here}"),
        );
    let (_, check, _) = lock_check(&lock);
    assert_eq!(check["status"], "pass", "{check}");
}

/// With a project, level 1 looks for a Python its `requires-python` admits, not the
/// policy's version (an arm64 Debian 12 node has 3.11 only, and so may the project).
#[test]
fn validate_looks_for_the_projects_python() {
    let python_check = |spec: &str| {
        let dir = tempfile::tempdir().unwrap();
        let set = |text: &str| text.replace("==3.12.*", spec);
        std::fs::write(dir.path().join("pyproject.toml"), set(PYPROJECT)).unwrap();
        std::fs::write(dir.path().join("uv.lock"), set(LOCK)).unwrap();
        let v = Test::in_project(dir.path(), ["validate", "--level", "1", "--json"])
            .stream(HOST)
            .run()
            .json();
        v["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "python")
            .cloned()
            .unwrap()
    };
    let none = python_check(">=3.99");
    assert_eq!(none["status"], "skip", "{none}");
    let reason = none["reason"].as_str().unwrap();
    assert!(
        reason.contains("no Python >=3.99 (the project's requires-python) found"),
        "{reason}"
    );
    if crate::support::python("3.11").is_some() {
        let found = python_check("==3.11.*");
        assert_eq!(found["status"], "pass", "{found}");
        assert!(
            found["reason"].as_str().unwrap().starts_with("3.11."),
            "{found}"
        );
    }
}
