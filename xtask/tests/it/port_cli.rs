//! `port` and `matrix` as a user meets them: layout preserved, idempotent, `--check`,
//! `--diff`, `--json`, and one clear line with exit 2 for every kind of bad input.

use std::path::Path;

use crate::support::*;

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn port_keeps_layout_and_is_idempotent() {
    let dir = copy_fixture("port/odd");
    let file = dir.path().join("pyproject.toml");
    let before = read(&file);
    Test::in_project(dir.path(), ["port"])
        .expect(0)
        .snapshot("port-odd");
    let after = read(&file);
    assert_ne!(before, after);
    snapshot_text("port-odd-pyproject", &after);

    // Every line that disappeared belongs to a key the policy changes.
    let diff = similar::TextDiff::from_lines(&before, &after);
    for change in diff.iter_all_changes() {
        if change.tag() == similar::ChangeTag::Delete {
            let line = change.value();
            assert!(
                [
                    "requires-python",
                    "bitsandbytes",
                    "nvidia-cudnn",
                    "triton",
                    "deepspeed",
                    "markers = ["
                ]
                .iter()
                .any(|k| line.contains(k)),
                "unrelated line changed: {line:?}"
            );
        }
    }
    // Comments survive, including the one after a rewritten item and the one before
    // a removed item.
    for comment in before.lines().filter_map(|l| l.find('#').map(|i| &l[i..])) {
        assert!(after.contains(comment), "lost comment {comment:?}\n{after}");
    }
    // Quoting of untouched items stays as written.
    assert!(after.contains("'torch>=2.7',            # the framework"));
    assert!(after.contains("name    = 'fixture-odd'"));
    // The result parses, and markers mean what the policy says.
    assert!(after.contains(
        r#""bitsandbytes>=0.46 ; python_version >= '3.10' and (sys_platform != 'darwin')""#
    ));
    assert!(after.contains(
        r#""triton>=3.3 ; (platform_machine == 'x86_64' or platform_machine == 'aarch64') and (sys_platform == 'linux')""#
    ));
    assert!(!after.contains("nvidia-cudnn"));

    // A second run changes nothing, byte for byte.
    Test::in_project(dir.path(), ["port"])
        .expect(0)
        .out_has("nothing to change");
    assert_eq!(read(&file), after);
}

#[test]
fn check_and_diff_write_nothing() {
    let dir = copy_fixture("port/main");
    let file = dir.path().join("pyproject.toml");
    let before = read(&file);

    Test::in_project(dir.path(), ["port", "--check"])
        .expect(1)
        .snapshot("port-check-main")
        .out_has("would change")
        .out_has("tool.uv.sources.torch")
        .out_has("why:");
    assert_eq!(read(&file), before);

    let diff = Test::in_project(dir.path(), ["port", "--diff"]).expect(0);
    diff.snapshot("port-diff-main")
        .out_has("+    { index = \"pytorch-cu128\", marker = \"sys_platform == 'linux'\" },")
        .out_has("-torch = { index = \"pytorch\" }");
    assert!(
        diff.stdout()
            .starts_with("--- a/pyproject.toml\n+++ b/pyproject.toml\n"),
        "{}",
        diff.stdout()
    );
    assert_eq!(read(&file), before);

    let v = Test::in_project(dir.path(), ["port", "--check", "--json"])
        .expect(1)
        .json();
    assert_eq!(v["mode"], "check");
    assert_eq!(v["written"], false);
    let changes = v["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["location"] == "tool.uv.sources.torch")
    );
    assert!(
        changes
            .iter()
            .all(|c| !c["reason"].as_str().unwrap().is_empty())
    );
    assert_eq!(read(&file), before);
}

/// Run port on `dir` and expect exactly one line on stderr, exit 2, and no change.
fn expect_bad(dir: &Path, extra: &[&str], needle: &str) {
    let file = dir.join("pyproject.toml");
    let before = std::fs::read(&file).ok();
    let name: String = needle
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    Test::in_project(dir, ["port"])
        .args(extra)
        .expect(2)
        .one_line_error(needle)
        .snapshot(&format!("port-refuses-{name}"));
    assert_eq!(std::fs::read(&file).ok(), before, "file changed");
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".xtask"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn malformed_toml_names_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"x\"\ndependencies = [\"torch\",\n  oops\n]\n",
    )
    .unwrap();
    expect_bad(dir.path(), &[], "pyproject.toml:4:3: invalid TOML");
}

#[test]
fn not_pep508_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[project]\nname = \"x\"\ndependencies = [\"torch>=2\", \"bitsandbytes=>0.4 ; os_name == 'posix'\"]\n",
    )
    .unwrap();
    expect_bad(
        dir.path(),
        &[],
        "project.dependencies: \"bitsandbytes=>0.4 ; os_name == 'posix'\" is not a PEP 508 requirement",
    );
}

#[test]
fn no_project_table_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        "[tool.black]\nline-length = 88\n",
    )
    .unwrap();
    expect_bad(dir.path(), &[], "no [project] table");
}

#[cfg(unix)]
#[test]
fn read_only_file_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = copy_fixture("port/main");
    let file = dir.path().join("pyproject.toml");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
    expect_bad(dir.path(), &[], "cannot write: file is read-only");
    // --check still works on a read-only file.
    Test::in_project(dir.path(), ["port", "--check"]).expect(1);
}

#[test]
fn bad_policies_are_one_line() {
    let shipped = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml"));
    let dir = copy_fixture("port/main");
    let cases = [
        (
            r#"index = "pytorch-cu130""#,
            r#"index = "pytorch-rocm""#,
            "index \"pytorch-rocm\" is not an index",
        ),
        (
            r#"marker = "sys_platform == 'linux'""#,
            r#"marker = "sys_platform === 'linux'""#,
            "deepspeed >=0.18.7: marker",
        ),
        ("[python]", "[python\n", "6:8: unclosed table"),
    ];
    for (from, to, needle) in cases {
        assert!(shipped.contains(from), "{from}");
        let bad = dir.path().join("bad-policy.toml");
        std::fs::write(&bad, shipped.replacen(from, to, 1)).unwrap();
        // The snapshot holds the whole line, which names the flag (`--policy FILE: ...`).
        expect_bad(dir.path(), &["--policy", bad.to_str().unwrap()], needle);
    }
    expect_bad(
        dir.path(),
        &["--policy", "/nonexistent/p.toml"],
        "cannot read the policy",
    );
}

#[test]
fn missing_project_is_one_line() {
    // The workspace root holds no pyproject.toml, so port needs --project.
    Test::new(["port"]).expect(2).one_line_error("--project");
}

#[test]
fn readme_matrix_is_generated_from_the_policy() {
    let generated = Test::new(["matrix", "--markdown"]).expect(0).stdout();
    let readme = read(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"));
    let start = "<!-- matrix:start (generated by `cargo xtask matrix --markdown`) -->\n";
    let end = "<!-- matrix:end -->";
    let a = readme
        .find(start)
        .expect("README has the matrix start marker")
        + start.len();
    let b = readme.find(end).expect("README has the matrix end marker");
    assert!(
        readme[a..b].trim() == generated.trim(),
        "README's platform matrix drifted from templates/platforms.toml: replace the block between the markers with `cargo xtask matrix --markdown`"
    );
    let v = Test::new(["matrix", "--json"]).expect(0).json();
    assert_eq!(v["targets"].as_array().unwrap().len(), 3);
}
