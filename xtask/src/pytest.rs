//! The app's pytest run, shared by `test`, `test-unit` and `validate --level 4`: the
//! Makefile's arguments, which GPU tests to leave out (or keep), the summary plugin in
//! templates/pytest/, and pytest's exit codes mapped onto the contract.

use std::collections::BTreeSet;

use anyhow::Result;
use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::error;
use crate::platform::Backend;
use crate::policy::{Need, Policy};
use crate::process::Status;
use crate::pyproject;
use crate::uv;

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

/// What to do with the tests the policy's `[pytest.gpu]` recognises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gpu {
    /// Leave out the GPU tests this backend cannot run (the default).
    DeselectUnrunnable(Backend),
    /// Run only the GPU tests this backend can run (`validate --level 4`).
    OnlyRunnable(Backend),
    /// No selection by the tool (the user's `-m` decides).
    Untouched,
}

/// Which tests of the suite to run, and how (the Makefile's targets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Suite {
    /// Everything under tests/, coverage of the package (Makefile: test).
    All,
    /// `-k src`, coverage of `<package>/src` (Makefile: test-unit).
    Unit,
    /// Tests matching `-k NAME`, output not captured, quiet logs (Makefile: test-debug).
    Debug(String),
    /// tests/ui/test.py (Makefile: test-ui); headed with video, screenshots and slow
    /// motion (Makefile: test-ui-headed).
    Ui { headed: bool },
}

/// One pytest run.
pub struct Run<'a> {
    pub suite: Suite,
    pub gpu: Gpu,
    /// A marker expression given by the user (checked against the registered markers).
    pub marker: Option<&'a str>,
    pub cov: Option<String>,
    pub extra: &'a [String],
    /// More environment for pytest (the UI tests' base URL).
    pub env: Vec<(String, String)>,
}

/// The Makefile's report files for a suite: junit, html, and the run's output.
fn report_names(suite: &Suite) -> (&'static str, &'static str, Option<&'static str>) {
    match suite {
        Suite::All | Suite::Unit => ("junit.xml", "pytest.html", Some("tests.log")),
        Suite::Debug(_) => ("junit.xml", "pytest.html", None),
        Suite::Ui { .. } => ("junit_ui.xml", "pytest_ui.html", Some("tests_ui.log")),
    }
}

/// `$LOG_LEVEL` for the UI tests (the Makefile's), INFO when unset.
fn log_level() -> String {
    std::env::var("LOG_LEVEL")
        .ok()
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "INFO".into())
}

/// The counts the summary plugin writes.
#[derive(Deserialize, Default, Debug, Clone)]
pub struct Summary {
    pub passed: u64,
    pub failed: u64,
    pub skipped: u64,
    pub deselected: u64,
    pub errors: u64,
    pub collected: u64,
}

impl Summary {
    /// The closing line: `N passed, N failed, N errors, N skipped, N deselected`.
    pub fn line(&self) -> String {
        format!(
            "{} passed, {} failed, {} errors, {} skipped, {} deselected",
            self.passed, self.failed, self.errors, self.skipped, self.deselected
        )
    }
}

/// How a run ended.
pub struct Outcome {
    pub status: Status,
    pub summary: Option<Summary>,
}

/// The selection the plugin applies (`XTASK_PYTEST_GPU`).
#[derive(Serialize, Debug, PartialEq, Eq)]
struct Selection {
    mode: Mode,
    markers: Vec<String>,
    node_ids: Vec<String>,
}

/// What the plugin does with the tests a selection matches.
#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Mode {
    /// Leave them out.
    Deselect,
    /// Keep only them.
    Only,
}

/// Whether a backend can run a test with this need.
pub fn meets(backend: Backend, need: Need) -> bool {
    matches!(
        (backend, need),
        (_, Need::Any)
            | (Backend::Cuda, Need::Gpu | Need::Cuda)
            | (Backend::Mps, Need::Gpu | Need::Mps)
    )
}

fn selection(policy: &Policy, gpu: Gpu) -> Option<Selection> {
    let (mode, backend, runnable) = match gpu {
        Gpu::Untouched => return None,
        Gpu::DeselectUnrunnable(b) => (Mode::Deselect, b, false),
        Gpu::OnlyRunnable(b) => (Mode::Only, b, true),
    };
    let pick = |list: &[(String, Need)]| -> Vec<String> {
        list.iter()
            .filter(|(_, need)| meets(backend, *need) == runnable)
            .map(|(name, _)| name.clone())
            .collect()
    };
    Some(Selection {
        mode,
        markers: pick(&policy.gpu_tests.markers),
        node_ids: pick(&policy.gpu_tests.node_ids),
    })
}

/// One line saying what the selection does, for the user.
fn describe(sel: &Selection, gpu: Gpu) -> String {
    let backend = match gpu {
        Gpu::DeselectUnrunnable(b) | Gpu::OnlyRunnable(b) => b.as_str(),
        Gpu::Untouched => "",
    };
    let mut what = Vec::new();
    if !sel.markers.is_empty() {
        what.push(format!("marked {}", sel.markers.join(", ")));
    }
    if !sel.node_ids.is_empty() {
        what.push(format!("named {}", sel.node_ids.join(", ")));
    }
    let what = if what.is_empty() {
        "none".to_string()
    } else {
        what.join("; ")
    };
    match sel.mode {
        Mode::Only => format!("backend {backend}: running only the GPU tests it can run ({what})"),
        Mode::Deselect => {
            format!("backend {backend}: deselecting the GPU tests it cannot run ({what})")
        }
    }
}

/// Run pytest for the context's project and judge it (the commands' usual case).
pub fn check(ctx: &Ctx, r: &Run) -> Result<()> {
    judge(&run(ctx, ctx.project()?, ctx.policy()?, r)?)
}

/// Run pytest in the project's environment as the Makefile did and print the closing
/// line. The caller judges the outcome with [`judge`].
pub fn run(ctx: &Ctx, project: &Utf8Path, policy: &Policy, r: &Run) -> Result<Outcome> {
    if let Some(m) = r.marker {
        let reqs = pyproject::load_requirements(project)?;
        check_markers(m, &registered_markers(&reqs, project))?;
    }
    if matches!(r.suite, Suite::Ui { .. }) {
        ui_tests(project)?;
    }
    let sel = selection(policy, r.gpu);
    if let Some(s) = &sel {
        errln!("{}", describe(s, r.gpu));
    }
    let uv = uv::ensure(&ctx.workspace, policy)?;
    let reports = project.join("reports");
    std::fs::create_dir_all(&reports)
        .map_err(|e| error::usage(format!("{reports}: cannot create: {e}")))?;
    let summary_path = reports.join("xtask-summary.json");
    let _ = std::fs::remove_file(&summary_path);
    let args = pytest_args(project, r, &reports)?;
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
    let mut cmd = uv
        .cmd()
        .args(&args)
        .env("PYTHONPATH", pythonpath)
        .env("XTASK_PYTEST_SUMMARY", summary_path.as_str())
        .dir(project.as_std_path());
    if let Some(s) = &sel {
        cmd = cmd.env("XTASK_PYTEST_GPU", serde_json::to_string(s)?);
    }
    if matches!(r.suite, Suite::Ui { .. })
        && ["debug", "trace"].contains(&log_level().to_ascii_lowercase().as_str())
    {
        cmd = cmd.env("DEBUG", "pw:api");
    }
    for (k, v) in &r.env {
        cmd = cmd.env(k, v);
    }
    let status = match report_names(&r.suite).2 {
        Some(name) => cmd.run_tee(reports.join(name).as_std_path())?.0,
        None => cmd.run_status()?,
    };
    let summary: Option<Summary> = std::fs::read(&summary_path)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok());
    if let Some(s) = &summary {
        crate::out::human_line(&s.line());
    }
    Ok(Outcome { status, summary })
}

/// `uv run` arguments for pytest: reports, coverage, the marker, the suite's options
/// and its tests, then the user's extra arguments.
fn pytest_args(project: &Utf8Path, r: &Run, reports: &Utf8Path) -> Result<Vec<String>> {
    let (junit, html, _) = report_names(&r.suite);
    let mut args: Vec<String> = vec![
        "run".into(),
        "--frozen".into(),
        "pytest".into(),
        "-v".into(),
        format!("--junitxml={}", reports.join(junit)),
        "--import-mode".into(),
        "importlib".into(),
        "-p".into(),
        "xtask_summary".into(),
    ];
    if uv::installed(project, "pytest_html") {
        args.push(format!("--html={}", reports.join(html)));
        args.push("--self-contained-html".into());
    }
    if matches!(r.suite, Suite::All | Suite::Unit)
        && uv::installed(project, "pytest_cov")
        && let Some(pkg) = r.cov.clone().or_else(|| top_package(project))
    {
        let target = if r.suite == Suite::Unit && project.join(&pkg).join("src").is_dir() {
            format!("{pkg}/src")
        } else {
            pkg
        };
        args.push(format!("--cov={target}"));
        args.push("--cov-report=term".into());
        args.push(format!("--cov-report=xml:{}", reports.join("coverage.xml")));
        args.push(format!(
            "--cov-report=html:{}",
            reports.join("coverage.html")
        ));
    }
    if let Some(m) = r.marker {
        args.extend(["-m".into(), m.to_string()]);
    }
    args.extend(suite_options(&r.suite));
    match &r.suite {
        Suite::Ui { .. } => args.push(ui_tests(project)?.to_string()),
        _ if project.join("tests").is_dir() => args.push("tests".into()),
        _ => {}
    }
    args.extend(r.extra.iter().cloned());
    Ok(args)
}

/// The Makefile's pytest options for a suite.
fn suite_options(suite: &Suite) -> Vec<String> {
    let strings = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    match suite {
        Suite::All => strings(&["-o", "log_cli=true", "-o", "log_level=INFO"]),
        Suite::Unit => strings(&["-k", "src", "-o", "log_cli=true", "-o", "log_level=INFO"]),
        Suite::Debug(name) => {
            let mut a = vec!["-k".to_string(), name.clone(), "-s".to_string()];
            a.extend(strings(&["-o", "log_cli=false", "-o", "log_level=WARNING"]));
            a
        }
        Suite::Ui { headed: true } => strings(&[
            "-vv",
            "-s",
            "--headed",
            "--video=on",
            "--screenshot=on",
            "--slowmo=1000",
        ]),
        Suite::Ui { headed: false } => vec![
            "-o".into(),
            "log_cli=true".into(),
            "-o".into(),
            format!("log_level={}", log_level()),
        ],
    }
}

/// The app's UI tests: tests/ui/test.py, as the Makefile named them.
fn ui_tests(project: &Utf8Path) -> Result<camino::Utf8PathBuf> {
    let ui = project.join("tests").join("ui").join("test.py");
    if !ui.is_file() {
        return Err(error::usage(format!(
            "{ui} does not exist: the UI tests live there (the app's tests/ui/)"
        )));
    }
    Ok(ui)
}

/// pytest's exit codes on the contract. 130 only when the user interrupted (the tool saw
/// SIGINT, or pytest died of it); pytest's own "Interrupted" (exit 2: errors during
/// collection) is a failed check.
pub fn judge(o: &Outcome) -> Result<()> {
    let code = o.status.code;
    let shown = code.map_or("a signal".to_string(), |c| c.to_string());
    if o.status.interrupted {
        return Err(error::interrupted(format!(
            "tests interrupted (pytest exit {shown})"
        )));
    }
    let errors = o.summary.as_ref().map_or(0, |s| s.errors);
    match code {
        Some(0) => Ok(()),
        Some(1) if errors > 0 => Err(error::failed(format!(
            "tests failed or errored (pytest exit {shown})"
        ))),
        Some(1) => Err(error::failed(format!("tests failed (pytest exit {shown})"))),
        Some(2) => Err(error::failed(format!(
            "pytest stopped before running the tests: {} (pytest exit {shown}); see its messages above",
            if errors > 0 {
                format!("{errors} errors during collection")
            } else {
                "it reported errors".to_string()
            }
        ))),
        Some(4) => Err(error::usage(format!(
            "pytest rejected its arguments (pytest exit {shown}); see its message above"
        ))),
        Some(5) => {
            let how = match &o.summary {
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

    #[test]
    fn gpu_selection_follows_the_backend() {
        let policy = Policy::parse(include_str!("../../templates/platforms.toml")).unwrap();
        let cpu = selection(&policy, Gpu::DeselectUnrunnable(Backend::Cpu)).unwrap();
        assert_eq!(cpu.mode, Mode::Deselect);
        assert_eq!(
            cpu.markers,
            ["requires_gpu", "requires_cuda", "requires_mps"]
        );
        assert_eq!(cpu.node_ids.len(), 2);
        // A Mac runs any-GPU and MPS tests, not the CUDA-only ones.
        let mps = selection(&policy, Gpu::DeselectUnrunnable(Backend::Mps)).unwrap();
        assert_eq!(mps.markers, ["requires_cuda"]);
        assert_eq!(mps.node_ids.len(), 2);
        let cuda = selection(&policy, Gpu::OnlyRunnable(Backend::Cuda)).unwrap();
        assert_eq!((cuda.mode, cuda.markers.len()), (Mode::Only, 2));
        assert_eq!(cuda.node_ids.len(), 2);
        let cpu_only = selection(&policy, Gpu::OnlyRunnable(Backend::Cpu)).unwrap();
        assert!(cpu_only.markers.is_empty() && cpu_only.node_ids.is_empty());
        assert!(selection(&policy, Gpu::Untouched).is_none());
    }

    #[test]
    fn pytest_exit_codes_on_the_contract() {
        let o = |code: Option<i32>, interrupted: bool, errors: u64| Outcome {
            status: Status { code, interrupted },
            summary: Some(Summary {
                errors,
                ..Summary::default()
            }),
        };
        let code = |o: Outcome| judge(&o).map_or_else(|e| error::code_of(&e), |_| error::Code::Ok);
        assert_eq!(code(o(Some(0), false, 0)), error::Code::Ok);
        assert_eq!(code(o(Some(1), false, 0)), error::Code::Failed);
        // Collection errors: pytest says "Interrupted" and exits 2; that is a failed check.
        assert_eq!(code(o(Some(2), false, 25)), error::Code::Failed);
        let e = judge(&o(Some(2), false, 25)).unwrap_err();
        assert!(error::line_of(&e).contains("25 errors during collection"));
        // The user's Ctrl-C, whatever pytest exits with.
        assert_eq!(code(o(Some(2), true, 0)), error::Code::Interrupted);
        assert_eq!(code(o(Some(4), false, 0)), error::Code::Usage);
        assert_eq!(code(o(Some(5), false, 0)), error::Code::Failed);
    }
}
