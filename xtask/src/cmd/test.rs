//! `cargo xtask test` / `test-unit`: the app's pytest run as the Makefile ran it, with
//! GPU-only tests deselected where the backend cannot run them, and one summary line.

use std::collections::BTreeSet;

use anyhow::Result;
use camino::Utf8Path;
use serde::Deserialize;

use crate::ctx::Ctx;
use crate::error;
use crate::platform::probe;
use crate::policy::Policy;
use crate::pyproject;
use crate::uv;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs `uv run --frozen pytest -v --junitxml=reports/junit.xml --import-mode importlib` with \
PYTHONPATH set to the project root, adding --html when pytest-html is installed and --cov when \
pytest-cov is. Tests the backend cannot run are deselected with the policy's marker expression \
(on a CPU host: `not requires_gpu and not requires_cuda and not requires_mps`); -m replaces it. \
Arguments after `--` go to pytest. Exit: 0 all passed, 1 tests failed or none were collected, \
2 usage error (pytest's 4), 130 interrupted; pytest's own code is printed beside it.")]
pub struct Test {
    /// pytest marker expression (replaces the backend's default deselection)
    #[arg(short = 'm', long = "marker", value_name = "EXPR")]
    marker: Option<String>,
    /// Package to measure coverage of (when pytest-cov is installed) [default: the project's top-level package]
    #[arg(long, value_name = "PKG")]
    cov: Option<String>,
    /// Arguments passed to pytest
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pytest_args: Vec<String>,
}

#[derive(Deserialize, Default, Debug, Clone)]
pub struct Summary {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub deselected: u64,
    pub errors: u64,
    pub collected: u64,
}

/// pytest's built-in markers (always registered).
const BUILTIN_MARKERS: &[&str] = &[
    "skip",
    "skipif",
    "xfail",
    "parametrize",
    "usefixtures",
    "filterwarnings",
    "tryfirst",
    "trylast",
];

impl Test {
    pub fn run(self, ctx: &Ctx, unit: bool) -> Result<()> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let reqs = pyproject::load_requirements(project)?;

        let expr = match &self.marker {
            Some(m) => {
                check_markers(m, &registered_markers(&reqs, project))?;
                m.clone()
            }
            None => {
                let backend = probe::quick_backend();
                let e = policy
                    .pytest
                    .deselect
                    .get(backend.as_str())
                    .cloned()
                    .unwrap_or_default();
                eprintln!("backend {}: -m {e:?}", backend.as_str());
                e
            }
        };
        let (status, summary) = pytest(
            ctx,
            project,
            policy,
            &expr,
            unit,
            self.cov.clone(),
            &self.pytest_args,
        )?;
        map_pytest(status, summary.as_ref())
    }
}

/// Run pytest in the project's environment as the Makefile did, print the summary line,
/// and return pytest's status and counts (for `test` and `validate --level 4`).
pub fn pytest(
    ctx: &Ctx,
    project: &Utf8Path,
    policy: &Policy,
    expr: &str,
    unit: bool,
    cov: Option<String>,
    extra: &[String],
) -> Result<(crate::process::Status, Option<Summary>)> {
    let uv = uv::ensure(&ctx.workspace, policy)?;
    let reports = project.join("reports");
    std::fs::create_dir_all(&reports)
        .map_err(|e| error::usage(format!("{reports}: cannot create: {e}")))?;
    let summary_path = reports.join("xtask-summary.json");
    let _ = std::fs::remove_file(&summary_path);

    let mut args: Vec<String> = vec![
        "run".into(),
        "--frozen".into(),
        "pytest".into(),
        "-v".into(),
        format!("--junitxml={}", reports.join("junit.xml")),
        "--import-mode".into(),
        "importlib".into(),
        "-p".into(),
        "xtask_summary".into(),
    ];
    if installed(project, "pytest_html") {
        args.push(format!("--html={}", reports.join("pytest.html")));
        args.push("--self-contained-html".into());
    }
    if installed(project, "pytest_cov")
        && let Some(pkg) = cov.clone().or_else(|| top_package(project))
    {
        let target = if unit && project.join(&pkg).join("src").is_dir() {
            format!("{pkg}/src")
        } else {
            pkg
        };
        args.push(format!("--cov={target}"));
        args.push(format!("--cov-report=xml:{}", reports.join("coverage.xml")));
        args.push(format!("--cov-report=html:{}", reports.join("coverage")));
    }
    if !expr.is_empty() {
        args.extend(["-m".into(), expr.to_string()]);
    }
    if unit {
        args.extend(["-k".into(), "src".into()]);
    }
    if project.join("tests").is_dir() {
        args.push("tests".into());
    }
    args.extend(extra.iter().cloned());

    let plugin_dir = ctx.workspace.join("templates").join("pytest");
    let pythonpath = std::env::join_paths(
        [project.as_std_path(), plugin_dir.as_std_path()]
            .into_iter()
            .map(|p| p.to_path_buf())
            .chain(
                std::env::var_os("PYTHONPATH")
                    .into_iter()
                    .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>()),
            ),
    )?;
    let status = uv
        .cmd()
        .args(&args)
        .env("PYTHONPATH", pythonpath)
        .env("XTASK_PYTEST_SUMMARY", summary_path.as_str())
        .dir(project.as_std_path())
        .run_status()?;

    let summary: Option<Summary> = std::fs::read(&summary_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(s) = &summary {
        let errors = if s.errors > 0 {
            format!(", {} errors", s.errors)
        } else {
            String::new()
        };
        println!(
            "{} passed, {} failed, {} skipped, {} deselected{errors}",
            s.passed, s.failed, s.skipped, s.deselected
        );
    }
    Ok((status, summary))
}

/// pytest's exit codes on the contract.
pub fn map_pytest(status: crate::process::Status, summary: Option<&Summary>) -> Result<()> {
    let code = status.code;
    let shown = code.map_or("a signal".to_string(), |c| c.to_string());
    if status.interrupted || code == Some(2) {
        return Err(error::interrupted(format!(
            "tests interrupted (pytest exit {shown})"
        )));
    }
    match code {
        Some(0) => Ok(()),
        Some(1) => Err(error::failed(format!("tests failed (pytest exit {shown})"))),
        Some(4) => Err(error::usage(format!(
            "pytest rejected its arguments (pytest exit {shown}); see its message above"
        ))),
        Some(5) => {
            let how = match summary {
                Some(s) if s.deselected > 0 => format!(
                    "no tests ran: all {} collected tests were deselected",
                    s.collected
                ),
                _ => "no tests collected".to_string(),
            };
            Err(error::failed(format!("{how} (pytest exit {shown})")))
        }
        _ => Err(error::failed(format!(
            "pytest failed (pytest exit {shown})"
        ))),
    }
}

/// Markers pytest knows for this project: built-ins, `[tool.pytest.ini_options]
/// markers`, and `config.addinivalue_line("markers", ...)` in conftest.py files.
fn registered_markers(reqs: &pyproject::Requirements, project: &Utf8Path) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = BUILTIN_MARKERS.iter().map(|s| s.to_string()).collect();
    out.extend(reqs.pytest_markers.iter().map(|m| marker_name(m)));
    for conftest in [
        project.join("conftest.py"),
        project.join("tests").join("conftest.py"),
    ] {
        if let Ok(text) = std::fs::read_to_string(conftest) {
            for part in text.split("addinivalue_line(").skip(1) {
                let mut quoted = part.split(['"', '\'']).skip(1).step_by(2);
                if quoted.next() == Some("markers")
                    && let Some(def) = quoted.next()
                {
                    out.insert(marker_name(def));
                }
            }
        }
    }
    out
}

fn marker_name(def: &str) -> String {
    def.split([':', '('])
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Every name in a marker expression must be registered.
fn check_markers(expr: &str, registered: &BTreeSet<String>) -> Result<()> {
    for word in expr.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if word.is_empty() || ["and", "or", "not"].contains(&word) {
            continue;
        }
        if !registered.contains(word) {
            let known: Vec<&str> = registered
                .iter()
                .map(String::as_str)
                .filter(|m| !BUILTIN_MARKERS.contains(m))
                .collect();
            return Err(error::usage(format!(
                "-m {expr:?}: unknown marker {word:?} (registered: {}); register it in [tool.pytest.ini_options] markers",
                if known.is_empty() {
                    "none".into()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    Ok(())
}

/// Whether a module is installed in the project's .venv.
fn installed(project: &Utf8Path, module: &str) -> bool {
    let venv = project.join(".venv");
    let Ok(entries) = std::fs::read_dir(venv.join("lib")) else {
        return venv.join("Lib").join("site-packages").join(module).is_dir();
    };
    entries
        .filter_map(|e| e.ok())
        .any(|e| e.path().join("site-packages").join(module).is_dir())
}

/// The project's top-level import package: the first folder in the root (or src/)
/// holding an __init__.py, tests excluded.
fn top_package(project: &Utf8Path) -> Option<String> {
    for base in [project.to_path_buf(), project.join("src")] {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("__init__.py").is_file())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n != "tests" && !n.starts_with('.'))
            .collect();
        names.sort();
        if let Some(n) = names.into_iter().next() {
            return Some(if base == project {
                n
            } else {
                format!("src/{n}")
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marker_checks() {
        let reg: BTreeSet<String> = ["requires_cuda", "requires_gpu", "skip"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(check_markers("not requires_gpu and not requires_cuda", &reg).is_ok());
        assert!(check_markers("(requires_cuda or skip)", &reg).is_ok());
        let e = check_markers("not requires_tpu", &reg).unwrap_err();
        assert!(
            format!("{e}").contains("unknown marker \"requires_tpu\""),
            "{e}"
        );
        assert_eq!(
            marker_name("requires_gpu: tests that need a GPU"),
            "requires_gpu"
        );
        assert_eq!(marker_name("slow(reason): long"), "slow");
    }
}
