//! Hostile input and hostile surroundings: no panic reaches the user, a closed pipe
//! ends quietly, a full disk is one line and non-zero.

mod support;

use std::process::{Command, Stdio};

use support::*;

/// Run with stdout a pipe whose reader is already gone.
fn closed_pipe(cmd: &mut Command) -> (Option<i32>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    (o.status.code(), text(&o.stderr))
}

#[test]
fn a_closed_pipe_ends_quietly_with_the_commands_own_code() {
    let dir = copy_fixture("port/main");
    for args in [
        vec!["matrix", "--json"],
        vec!["platform", "--json"],
        vec!["port", "--diff"],
    ] {
        let (code, err) = closed_pipe(xtask().arg("--project").arg(dir.path()).args(&args));
        assert_eq!(code, Some(0), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{args:?}: {err}"
        );
    }
    // `--check` still says the file differs (exit 1) although nobody reads the list.
    let (code, err) = closed_pipe(
        xtask()
            .arg("--project")
            .arg(dir.path())
            .args(["port", "--check"]),
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // The rewrite itself succeeds and says so by its exit code.
    let before = std::fs::read_to_string(dir.path().join("pyproject.toml")).unwrap();
    let (code, err) = closed_pipe(xtask().arg("--project").arg(dir.path()).arg("port"));
    assert_eq!(code, Some(0), "{err}");
    assert_ne!(
        std::fs::read_to_string(dir.path().join("pyproject.toml")).unwrap(),
        before
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_one_line_and_non_zero() {
    let dir = copy_fixture("port/main");
    for args in [vec!["matrix"], vec!["platform", "--json"], vec!["port"]] {
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let o = run(xtask()
            .arg("--project")
            .arg(dir.path())
            .args(&args)
            .stdout(full));
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {err}");
        let last = err.lines().last().unwrap_or("");
        assert_eq!(
            last, "error: cannot write the output: No space left on device (os error 28)",
            "{args:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// Requirement names that made pep508_rs panic (a name ending in `-`, `_` or `.`
/// before a space, `;`, `[`, `@` or a non-ASCII character; a non-ASCII character after
/// a quoted marker value) are one line naming the file, exit 2, from every command that
/// reads dependencies, and from the policy.
#[test]
fn parser_panics_become_one_line() {
    for dep in [
        "foo- >=1",
        "foo_;python_version>'3'",
        "foo.[x]",
        "foo-@ https://x.invalid/a.whl",
        "foo-é",
        "foo ; sys_platform == 'linux'é",
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("pyproject.toml"),
            format!(
                "[project]\nname = \"x\"\nversion = \"1\"\nrequires-python = \"==3.12.*\"\ndependencies = [{dep:?}]\n"
            ),
        )
        .unwrap();
        for cmd in ["port", "requirements"] {
            let o = run(xtask().arg("--project").arg(dir.path()).arg(cmd));
            let err = text(&o.stderr);
            assert!(!err.contains("panicked"), "{cmd} {dep}: {err}");
            assert!(
                matches!(o.status.code(), Some(1 | 2)),
                "{cmd} {dep}: {:?} {err}",
                o.status.code()
            );
        }
        let o = run(xtask().arg("--project").arg(dir.path()).arg("port"));
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{dep}: {err}");
        assert_eq!(err.lines().count(), 1, "{dep}: {err}");
        assert!(err.contains("pyproject.toml"), "{dep}: {err}");
    }
}

#[test]
fn a_policy_marker_that_panicked_the_parser_is_one_line() {
    let policy = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml"),
    )
    .unwrap();
    let bad = policy.replacen(
        "marker = \"sys_platform != 'darwin'\"",
        "marker = \"sys_platform != 'darwin'\u{e9}\"",
        1,
    );
    assert_ne!(bad, policy);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, bad).unwrap();
    let o = run(xtask().arg("--policy").arg(&file).arg("matrix"));
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("policy.toml") && !err.contains("panicked"),
        "{err}"
    );
}

/// A CRLF file keeps its line ends and a BOM file its BOM; `--check` on the ported file
/// is 0 and a second port changes no byte.
#[test]
fn crlf_and_bom_survive_port() {
    let base = std::fs::read_to_string(fixtures().join("port/main/pyproject.toml")).unwrap();
    for (name, original) in [
        ("crlf", base.replace('\n', "\r\n")),
        ("bom", format!("\u{feff}{base}")),
        ("both", format!("\u{feff}{}", base.replace('\n', "\r\n"))),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pyproject.toml");
        std::fs::write(&file, &original).unwrap();
        let o = run(xtask().arg("--project").arg(dir.path()).arg("port"));
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stderr));
        let ported = std::fs::read_to_string(&file).unwrap();
        assert_ne!(ported, original, "{name}");
        assert_eq!(
            ported.starts_with('\u{feff}'),
            original.starts_with('\u{feff}'),
            "{name}: BOM"
        );
        if original.contains("\r\n") {
            assert_eq!(
                ported.matches('\n').count(),
                ported.matches("\r\n").count(),
                "{name}: every line ends in CRLF"
            );
        } else {
            assert!(!ported.contains('\r'), "{name}");
        }
        let o = run(xtask()
            .arg("--project")
            .arg(dir.path())
            .args(["port", "--check"]));
        assert_eq!(o.status.code(), Some(0), "{name}: {}", text(&o.stdout));
        run(xtask().arg("--project").arg(dir.path()).arg("port"));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), ported, "{name}");
    }
}
