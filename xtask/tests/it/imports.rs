//! `audit`'s import check on a fixture shaped like H2O LLM Studio's main branch: the
//! imports that break where the policy leaves deepspeed or bitsandbytes out, and none of
//! the guarded or relative ones. The parser is the interpreter's own `ast` (real Python).

use crate::support::{Test, copy_fixture, which};
use serde_json::Value;

fn audit(dir: &std::path::Path, extra: &[&str]) -> (Option<i32>, Value, String) {
    let ran = Test::in_project(dir, ["audit", "--json"]).args(extra).run();
    let v: Value = serde_json::from_slice(&ran.out.stdout).unwrap_or(Value::Null);
    (ran.code(), v, ran.stderr())
}

fn has_python() -> bool {
    if which("python3").is_none() && which("python").is_none() {
        eprintln!("SKIPPED: the import check parses with Python's ast and no Python is on PATH");
        return false;
    }
    true
}

/// Every finding as one line: `FILE:LINE PACKAGE TARGET,... BREAKS code|test`.
fn rows(v: &Value) -> Vec<String> {
    let s = |v: &Value| v.as_str().unwrap().to_string();
    v["imports"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let targets: Vec<String> = f["targets"].as_array().unwrap().iter().map(s).collect();
            let kind = if f["test"].as_bool().unwrap() {
                "test"
            } else {
                "code"
            };
            format!(
                "{}:{} {} {} {} {kind}",
                s(&f["file"]),
                f["line"].as_u64().unwrap(),
                s(&f["package"]),
                targets.join(","),
                s(&f["breaks"]),
            )
        })
        .collect()
}

#[test]
fn the_apps_unguarded_imports_are_listed_where_the_package_is_left_out() {
    if !has_python() {
        return;
    }
    let dir = copy_fixture("imports/app");
    let (code, v, err) = audit(dir.path(), &[]);
    assert_eq!(code, Some(1), "{err}");
    let found = rows(&v);
    let expected = [
        // The three files of the real app's main branch.
        "llm_studio/train.py:4 deepspeed linux-aarch64-cuda,macos-arm64-mps import code",
        // `import os, deepspeed`: two names in one statement.
        "llm_studio/src/utils/modeling_utils.py:1 deepspeed linux-aarch64-cuda,macos-arm64-mps import code",
        // `from deepspeed.runtime.dataloader import ...`: a submodule of the package.
        "llm_studio/src/utils/modeling_utils.py:3 deepspeed linux-aarch64-cuda,macos-arm64-mps import code",
        "llm_studio/src/utils/modeling_utils.py:4 deepspeed linux-aarch64-cuda,macos-arm64-mps import code",
        "llm_studio/src/optimizers.py:3 bitsandbytes macos-arm64-mps import code",
        // Inside a function: reported apart, as breaking when called.
        "llm_studio/src/guarded.py:20 deepspeed linux-aarch64-cuda,macos-arm64-mps call code",
        // Tests: counted apart; a module-level import fails collection there.
        "tests/src/test_optimizers.py:1 bitsandbytes macos-arm64-mps import test",
        "tests/integration/test_integration.py:2 deepspeed linux-aarch64-cuda,macos-arm64-mps call test",
    ];
    for want in expected {
        assert!(
            found.iter().any(|f| f == want),
            "{want} missing from {found:#?}"
        );
    }
    // Nothing else: try/except ImportError, `except (ModuleNotFoundError, ...)`, `if
    // TYPE_CHECKING`, the relative `from ..optimizers import`, and what x86_64 installs.
    assert_eq!(found.len(), 8, "{found:#?}");
    assert!(!found.iter().any(|r| r.contains("linux-x86_64-cuda")));
    assert!(
        v["imports"]["guarded"].as_u64().unwrap() >= 3,
        "{}",
        v["imports"]
    );
    assert_eq!(v["imports"]["code"], serde_json::json!(["llm_studio"]));
    assert_eq!(v["imports"]["tests"], serde_json::json!(["tests"]));
    // A file with a syntax error, and one that is not UTF-8: one warning each, the audit
    // goes on.
    let warnings: Vec<&str> = err.lines().filter(|l| l.starts_with("warning:")).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("llm_studio/src/broken_syntax.py:1: cannot parse")),
        "{err}"
    );
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("llm_studio/src/latin1.py") && w.contains("not UTF-8")),
        "{err}"
    );
    assert_eq!(warnings.len(), 2, "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("error: unguarded imports of packages a target leaves out")
            && last.contains("deepspeed on linux-aarch64-cuda, macos-arm64-mps (4 places)")
            && last.contains("bitsandbytes on macos-arm64-mps (2 places)"),
        "{err}"
    );
}

#[test]
fn allowed_imports_and_the_lock_alone() {
    if !has_python() {
        return;
    }
    let dir = copy_fixture("imports/app");
    let allow = [
        "--allow-import",
        "deepspeed:llm_studio",
        "--allow-import",
        "bitsandbytes:llm_studio/src/optimizers.py",
    ];
    // bitsandbytes in tests/ is still unguarded.
    let (code, v, err) = audit(dir.path(), &allow);
    assert_eq!(code, Some(1), "{err}");
    let allowed = v["imports"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["allowed"] == true)
        .count();
    assert_eq!(allowed, 6, "{}", v["imports"]);
    assert!(
        err.lines()
            .last()
            .unwrap()
            .contains("bitsandbytes on macos-arm64-mps (1 place)"),
        "{err}"
    );
    let mut all = allow.to_vec();
    all.extend(["--allow-import", "bitsandbytes:tests/"]);
    let (code, _, err) = audit(dir.path(), &all);
    assert_eq!(code, Some(0), "{err}");
    // [tool.xtask] allow-imports says the same from the project.
    let py = dir.path().join("pyproject.toml");
    let mut text = std::fs::read_to_string(&py).unwrap();
    text.push_str("\n[tool.xtask]\nallow-imports = [\"deepspeed:llm_studio\", \"bitsandbytes:llm_studio\", \"bitsandbytes:tests\"]\n");
    std::fs::write(&py, text).unwrap();
    let (code, _, err) = audit(dir.path(), &[]);
    assert_eq!(code, Some(0), "{err}");
    // A malformed one is a usage error naming the flag.
    let (code, _, err) = audit(dir.path(), &["--allow-import", "deepspeed"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("--allow-import \"deepspeed\": write PKG:PATH"),
        "{err}"
    );
    // --no-imports: the lock alone, no parser, no "imports" in the report.
    let (code, v, err) = audit(copy_fixture("imports/app").path(), &["--no-imports"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(v.get("imports").is_none(), "{v}");
}

/// The parser's speed on a tree of ~500 files (printed, not judged).
#[test]
fn five_hundred_files_parse_in_one_run() {
    if !has_python() {
        return;
    }
    let dir = copy_fixture("imports/app");
    let pkg = dir.path().join("llm_studio/many");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("__init__.py"), "").unwrap();
    for i in 0..500 {
        std::fs::write(
            pkg.join(format!("m{i}.py")),
            format!(
                "import os\nimport torch\nfrom typing import Any\n\n\ndef f{i}(x: Any) -> Any:\n    import json\n    return json.dumps(x)\n\n\nclass C{i}:\n    pass\n"
            ),
        )
        .unwrap();
    }
    let t = std::time::Instant::now();
    let (code, v, err) = audit(dir.path(), &["--target", "linux-x86_64-cuda"]);
    eprintln!(
        "audit with the import check: {} files in {:?}",
        v["imports"]["files"],
        t.elapsed()
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(v["imports"]["files"].as_u64().unwrap(), 512);
}
