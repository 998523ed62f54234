//! `cargo xtask test` / `test-unit`: the app's pytest run as the Makefile ran it, with
//! the GPU tests this backend cannot run deselected, and one closing line.

use std::time::Duration;

use anyhow::Result;

use crate::ctx::Ctx;
use crate::platform::{Backend, probe};
use crate::process::Sigint;
use crate::pytest::{self, Gpu, Suite};
use crate::uv;
use crate::waveapp;

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
    backend: Option<Backend>,
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
        let backend = self.backend.unwrap_or_else(probe::quick_backend);
        let gpu = match (&self.marker, self.gpu_only) {
            (Some(_), _) => Gpu::Untouched,
            (None, true) => Gpu::OnlyRunnable(backend),
            (None, false) => Gpu::DeselectUnrunnable(backend),
        };
        pytest::check(
            ctx,
            &pytest::Run {
                suite,
                gpu,
                marker: self.marker.as_deref(),
                cov: self.cov.clone(),
                extra: &self.pytest_args,
                env: Vec::new(),
            },
        )
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs the tests whose names match NAME (`pytest -k NAME -s`, output not captured, logs at WARNING \
and not written to a file), the way the Makefile's `make test-debug test=NAME` did; GPU tests \
this backend cannot run are still left out.

Examples:
  cargo xtask test-debug test_encode
  cargo xtask test-debug 'chunks and not zero' -- --pdb")]
pub struct TestDebug {
    /// A pytest -k expression naming the test(s)
    #[arg(value_name = "NAME")]
    name: String,
    /// Arguments passed to pytest
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pytest_args: Vec<String>,
}

impl TestDebug {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        pytest::check(
            ctx,
            &pytest::Run {
                suite: Suite::Debug(self.name.clone()),
                gpu: Gpu::DeselectUnrunnable(probe::quick_backend()),
                marker: None,
                cov: None,
                extra: &self.pytest_args,
                env: Vec::new(),
            },
        )
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs the Playwright UI tests (tests/ui/test.py) as the Makefile did: reports/junit_ui.xml, \
reports/pytest_ui.html, the output in reports/tests_ui.log, log level from $LOG_LEVEL \
(debug or trace also sets DEBUG=pw:api). --headed adds --headed --video=on --screenshot=on \
--slowmo=1000 (Makefile: test-ui-headed). Browsers come from `cargo xtask setup-dev \
--with-playwright`.

--serve does what the Makefile's test-ui-github-actions did, without its fixed sleep: starts \
the app (as `llmstudio`), waits until it is really ready (waved and the app's own server \
answer), runs the UI tests against it with LOCAL_LOGIN=True and PYTEST_BASE_URL, and always \
stops the app afterwards; the exit code is the tests'.

Examples:
  cargo xtask test-ui --serve
  LOG_LEVEL=debug cargo xtask test-ui --headed")]
pub struct TestUi {
    /// Show the browser, record video and screenshots, slow motion (Makefile: test-ui-headed)
    #[arg(long)]
    headed: bool,
    /// Start the app, wait until it is ready, test it, stop it (Makefile: test-ui-github-actions)
    #[arg(long)]
    serve: bool,
    /// --serve: the port the app answers on [default: the policy's, 10101]
    #[arg(long, value_name = "PORT")]
    port: Option<u16>,
    /// --serve: seconds to wait for the app to be ready
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    wait_timeout: u64,
    /// Arguments passed to pytest
    #[arg(last = true, value_name = "PYTEST_ARGS")]
    pytest_args: Vec<String>,
}

impl TestUi {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let ui = pytest::Run {
            suite: Suite::Ui {
                headed: self.headed,
            },
            gpu: Gpu::Untouched,
            marker: None,
            cov: None,
            extra: &self.pytest_args,
            env: Vec::new(),
        };
        if !self.serve {
            return pytest::check(ctx, &ui);
        }
        let port = self.port.unwrap_or(policy.app.port);
        waveapp::refuse_busy(port)?;
        let uv = uv::ensure(&ctx.workspace, policy)?;
        let sigint = Sigint::catch()?;
        let app = waveapp::start(
            &uv,
            project,
            &waveapp::Launch {
                module: &policy.app.module,
                port,
                port_given: self.port.is_some(),
                mode: waveapp::Mode::NoReload,
            },
        )?;
        let ready = app.wait_ready(Duration::from_secs(self.wait_timeout), &sigint)?;
        errln!(
            "ready after {:.1} s: running the UI tests against http://localhost:{port}",
            ready.total.as_secs_f64()
        );
        let outcome = pytest::run(
            ctx,
            project,
            policy,
            &pytest::Run {
                env: vec![
                    ("LOCAL_LOGIN".into(), "True".into()),
                    ("PYTEST_BASE_URL".into(), format!("localhost:{port}")),
                ],
                ..ui
            },
        );
        errln!("stopping the app (process group)...");
        app.stop();
        pytest::judge(&outcome?)
    }
}
