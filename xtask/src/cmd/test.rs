//! `cargo xtask test` / `test-unit`: the app's pytest run as the Makefile ran it, with
//! the GPU tests this backend cannot run deselected, and one closing line.

use anyhow::Result;

use crate::ctx::Ctx;
use crate::platform::{Backend, probe};
use crate::pytest::{self, Gpu, Suite};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum BackendArg {
    Cuda,
    Mps,
    Cpu,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs `uv run --frozen pytest -v --junitxml=reports/junit.xml --import-mode importlib` in the project \
with PYTHONPATH set to the project root, adding --html when pytest-html is installed and --cov when \
pytest-cov is. The GPU tests this host's backend cannot run are deselected and counted: those \
with the policy's GPU markers (requires_gpu, requires_cuda, requires_mps) and those it names by \
node id ([pytest.gpu] in templates/platforms.toml); -m replaces that selection. Arguments after \
`--` go to pytest. Ends with `N passed, N failed, N errors, N skipped, N deselected`.

Exit: 0 all passed; 1 tests failed, errors during collection, or nothing ran; 2 usage error \
(pytest's 4); 130 interrupted by you (Ctrl-C). pytest's own code is printed beside it.

Examples:
  cargo xtask test
  cargo xtask test-unit -- -x
  cargo xtask test --backend cuda --gpu-only -- --collect-only -qq   # what a CUDA node would run")]
pub struct Test {
    /// pytest marker expression (replaces the backend's deselection of GPU tests)
    #[arg(short = 'm', long = "marker", value_name = "EXPR", conflicts_with_all = ["gpu_only", "backend"])]
    marker: Option<String>,
    /// Select as if this host's backend were this one [default: the backend found]
    #[arg(long, value_enum, value_name = "BACKEND")]
    backend: Option<BackendArg>,
    /// Run only the GPU tests the backend can run (what `validate --level 4` runs)
    #[arg(long)]
    gpu_only: bool,
    /// Package to measure coverage of (when pytest-cov is installed) [default: the project's top-level package]
    #[arg(long, value_name = "PKG")]
    cov: Option<String>,
    /// Arguments passed to pytest
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pytest_args: Vec<String>,
}

impl Test {
    pub fn run(self, ctx: &Ctx, suite: Suite) -> Result<()> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let backend = match self.backend {
            Some(BackendArg::Cuda) => Backend::Cuda,
            Some(BackendArg::Mps) => Backend::Mps,
            Some(BackendArg::Cpu) => Backend::Cpu,
            None => probe::quick_backend(),
        };
        let gpu = match (&self.marker, self.gpu_only) {
            (Some(_), _) => Gpu::Untouched,
            (None, true) => Gpu::OnlyRunnable(backend),
            (None, false) => Gpu::DeselectUnrunnable(backend),
        };
        let outcome = pytest::run(
            ctx,
            project,
            policy,
            &pytest::Run {
                suite,
                gpu,
                marker: self.marker.as_deref(),
                cov: self.cov.clone(),
                extra: &self.pytest_args,
            },
        )?;
        pytest::judge(&outcome)
    }
}
