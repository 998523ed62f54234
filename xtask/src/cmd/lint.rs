//! `cargo xtask style` (mypy) and `format` (ruff): the Makefile's code checks, run with
//! the versions the project pins.

use anyhow::Result;

use crate::ctx::Ctx;
use crate::error;
use crate::lock;
use crate::uv;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs `uv run --frozen mypy . --check-untyped-defs` in the project (the mypy of its dev group), \
shows the output and keeps it in reports/mypy.log. Fails (exit 1) unless mypy says \"Success: no \
issues found\"; exit 3 when mypy is not installed in the project's environment.

Examples:
  cargo xtask style
  cargo xtask style -- --strict llm_studio/src")]
pub struct Style {
    /// Arguments passed to mypy (after `.` and --check-untyped-defs)
    #[arg(last = true, value_name = "MYPY_ARGS")]
    mypy_args: Vec<String>,
}

impl Style {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        if !uv::installed(project, "mypy") {
            return Err(error::absent(format!(
                "mypy is not installed in {project}/.venv: add it to the dev group and run `cargo xtask setup-dev`"
            )));
        }
        let uv = uv::ensure(&ctx.workspace, policy)?;
        let reports = project.join("reports");
        std::fs::create_dir_all(&reports)
            .map_err(|e| error::usage(format!("{reports}: cannot create: {e}")))?;
        let log = reports.join("mypy.log");
        let (status, out) = uv
            .cmd()
            .args(["run", "--frozen", "mypy", ".", "--check-untyped-defs"])
            .args(&self.mypy_args)
            .dir(project.as_std_path())
            .run_tee(log.as_std_path())?;
        if status.exited("mypy")? == Some(0) && out.contains("Success: no issues found") {
            outln!("style: mypy found no issues ({log})");
            return Ok(());
        }
        let found = out
            .lines()
            .rev()
            .find(|l| l.starts_with("Found ") || l.contains("error:"))
            .unwrap_or("mypy did not report success")
            .trim()
            .to_string();
        Err(error::failed(format!("style: {found} (see {log})")))
    }
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs `ruff format` and `ruff check --fix` (with --check: `ruff format --check` and `ruff check`, \
changing nothing; for CI) in the project, with the ruff version uv.lock pins \
(`uv tool run ruff@VERSION`), so every machine formats alike; when the lock has no ruff, uv's \
newest with a note. Both steps run; exit 1 when either finds something.

Examples:
  cargo xtask format
  cargo xtask format --check")]
pub struct Format {
    /// Only check: exit 1 when a file would be reformatted or a lint fails; change nothing
    #[arg(long)]
    check: bool,
}

impl Format {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let lock_path = project.join("uv.lock");
        let pinned = std::fs::read_to_string(&lock_path)
            .ok()
            .and_then(|text| lock::parse(lock_path.as_str(), &text).ok())
            .and_then(|l| {
                l.package
                    .iter()
                    .find(|p| p.name == "ruff")
                    .and_then(|p| p.version.clone())
            });
        let ruff = match &pinned {
            Some(v) => format!("ruff@{v}"),
            None => {
                errln!("note: {lock_path} pins no ruff: using the newest ruff uv finds");
                "ruff".to_string()
            }
        };
        let uv = uv::ensure(&ctx.workspace, policy)?;
        let steps: [&[&str]; 2] = if self.check {
            [&["format", "--check"], &["check"]]
        } else {
            [&["format"], &["check", "--fix"]]
        };
        let mut failed = Vec::new();
        for step in steps {
            let st = uv
                .cmd()
                .args(["tool", "run", &ruff])
                .args(step)
                .dir(project.as_std_path())
                .run_status()?;
            if st.exited("ruff")? != Some(0) {
                failed.push(format!("ruff {}", step.join(" ")));
            }
        }
        if failed.is_empty() {
            outln!("format: {ruff} is satisfied");
            Ok(())
        } else {
            Err(error::failed(format!(
                "format: {} found something (see above)",
                failed.join(" and ")
            )))
        }
    }
}
