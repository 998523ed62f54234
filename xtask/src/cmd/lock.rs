//! `cargo xtask lock`: `uv lock` for the project, with the interpreter the dev loop
//! finds (uv's own discovery, then PATH and pyenv's versions folder), so a port to a
//! new Python locks without uv trying to download one.

use anyhow::Result;

use crate::ctx::Ctx;
use crate::error;
use crate::pyproject;
use crate::uv;

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs `uv lock` in the project. When uv cannot find an interpreter for requires-python itself \
(e.g. a pyenv version that is installed but not active), the one found on PATH or in pyenv's \
versions folder is passed with --python. Arguments after `--` go to uv lock.

Examples:
  cargo xtask port && cargo xtask lock
  cargo xtask lock --check                    # exit 1 when uv.lock is out of date
  cargo xtask lock -- --upgrade-package torch")]
pub struct Lock {
    /// Only check that uv.lock is up to date (`uv lock --check`); write nothing
    #[arg(long)]
    check: bool,
    /// Arguments passed to `uv lock`
    #[arg(last = true, value_name = "UV_ARGS")]
    uv_args: Vec<String>,
}

impl Lock {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let reqs = pyproject::load_requirements(project)?;
        let uv = uv::ensure(&ctx.workspace, policy)?;
        let python = match &reqs.requires_python {
            Some(r) => uv::python_for(&uv, project, r)?,
            None => None,
        };
        let mut cmd = uv.cmd().arg("lock").dir(project.as_std_path());
        if self.check {
            cmd = cmd.arg("--check");
        }
        if let Some(p) = &python {
            cmd = cmd.arg("--python").arg(p);
        }
        let status = cmd.args(&self.uv_args).run_status()?;
        if self.check && status.code == Some(1) && !status.interrupted {
            return Err(error::failed(format!(
                "{project}/uv.lock is out of date with pyproject.toml: run `cargo xtask lock`"
            )));
        }
        status.check("uv lock")?;
        if !self.check {
            errln!(
                "lock: {project}/uv.lock is up to date; next: `cargo xtask audit` (every target), then `cargo xtask setup-dev`"
            );
        }
        Ok(())
    }
}
