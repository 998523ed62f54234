//! `cargo xtask setup` / `setup-dev`: the app's environment from its lock, as the
//! Makefile's targets did, made fast when nothing changed.

use anyhow::Result;
use camino::Utf8Path;
use serde::{Deserialize, Serialize};

use crate::ctx::Ctx;
use crate::error;
use crate::fsx;
use crate::lock;
use crate::platform::{Backend, probe};
use crate::pyproject;
use crate::uv::{self, Uv};

const STAMP: &str = ".xtask-setup.json";

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Runs `uv sync --frozen`: the environment is made exactly from uv.lock, which is never re-resolved or \
rewritten (no network needed to decide versions). `--locked` would instead check the lock against \
pyproject.toml by resolving again; this command does that check offline and stops with a clear error \
when the lock is out of date (run `cargo xtask lock`).

The target's dependency group from the policy (e.g. arm64-cuda) is added when the project defines \
it. CUDA-only extras (flash) are tried on NVIDIA hosts only, best-effort: a failure is a warning. \
Every extra goes into one `uv sync` (uv sync is exact: a second run would take the first one's \
extras away); when that fails, each is tried alone, the ones that install are synced together and \
the others named. An extra asked with --extra that does not install ends the run with exit 1. \
A second run with nothing changed returns at once: a stamp inside .venv records the hashes of \
pyproject.toml and uv.lock, the uv command line, the interpreter and uv; --force runs again.")]
pub struct Setup {
    /// Run uv even when nothing changed since the last successful run
    #[arg(long)]
    force: bool,
    /// Also run `playwright install` (browsers for the UI tests)
    #[arg(long)]
    with_playwright: bool,
    /// Also install this extra of the project's [project.optional-dependencies] (repeat for
    /// more); it must install, where the policy's CUDA extras are best-effort
    #[arg(long = "extra", value_name = "NAME")]
    extras: Vec<String>,
}

#[derive(Serialize, Deserialize, PartialEq, Eq, Debug, Clone)]
struct Stamp {
    key: String,
    /// The same inputs with uv by file identity instead of its answer to --version: a
    /// no-op run checks this one and starts no process at all.
    #[serde(default)]
    quick: String,
    command: Vec<String>,
    extras: Vec<String>,
}

/// Which dependencies an environment gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deps {
    /// The app's own (Makefile: setup): `--no-dev`.
    App,
    /// With the dev group for tests and linting (Makefile: setup-dev).
    Dev,
}

/// What `uv sync` is asked for here: its arguments, the extras to install (the policy's
/// CUDA extras this host can use, then those asked with --extra) and which were asked.
struct Plan {
    args: Vec<String>,
    extras: Vec<String>,
    asked: Vec<String>,
}

/// Where the sync with every extra failed: the project alone must install; each extra
/// is tried on its own (best effort: they build CUDA kernels), then the ones that
/// installed are synced together. The extras installed.
fn extras_one_by_one(
    sync: &dyn Fn(&[String]) -> crate::process::Cmd,
    extras: &[String],
) -> Result<Vec<String>> {
    sync(&[]).run_status()?.check("uv sync")?;
    let mut good = Vec::new();
    for extra in extras {
        let code = sync(std::slice::from_ref(extra))
            .run_status()?
            .exited("uv sync")?;
        if code == Some(0) {
            good.push(extra.clone());
        } else {
            errln!(
                "warning: the {extra} extra did not install (uv exited {}; its message is above)",
                code.map_or("on a signal".into(), |c| c.to_string())
            );
        }
    }
    sync(&good).run_status()?.check("uv sync")?;
    Ok(good)
}

/// pyproject.toml and uv.lock, as bytes (the stamp hashes them).
fn read_inputs(py_path: &Utf8Path, lock_path: &Utf8Path) -> Result<(Vec<u8>, Vec<u8>)> {
    let py =
        std::fs::read(py_path).map_err(|e| error::usage(format!("{py_path}: cannot read: {e}")))?;
    let lock = std::fs::read(lock_path).map_err(|_| {
        error::usage(format!(
            "{lock_path} does not exist: run `cargo xtask lock` (after `cargo xtask port` for every platform)"
        ))
    })?;
    Ok((py, lock))
}

impl Setup {
    pub fn run(self, ctx: &Ctx, deps: Deps) -> Result<()> {
        let name = match deps {
            Deps::Dev => "setup-dev",
            Deps::App => "setup",
        };
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let py_path = project.join("pyproject.toml");
        let lock_path = project.join("uv.lock");
        let (py_bytes, lock_bytes) = read_inputs(&py_path, &lock_path)?;
        let doc = pyproject::parse(py_path.as_str(), &String::from_utf8_lossy(&py_bytes))?;
        let reqs = pyproject::requirements(&doc);
        let plan = plan(policy, &reqs, deps, &self.extras)?;
        let venv = project.join(".venv");
        let stamp_path = venv.join(STAMP);
        let key = |uv_identity: &str| {
            stamp_key(
                &py_bytes,
                &lock_bytes,
                &plan.args,
                &plan.extras,
                uv_identity,
                &venv,
                self.with_playwright,
            )
        };
        let quick_now = || key(&uv::candidates_identity(&ctx.workspace, policy));
        let up_to_date = || {
            errln!(
                "{name}: up to date (pyproject.toml, uv.lock, uv and the interpreter are unchanged since the last run; --force runs uv again)"
            );
        };
        let old = (!self.force).then(|| read_stamp(&stamp_path)).flatten();
        if old
            .as_ref()
            .is_some_and(|o| !o.quick.is_empty() && o.quick == quick_now())
        {
            up_to_date();
            return Ok(());
        }
        let uv = uv::ensure(&ctx.workspace, policy)?;
        let key_now = || key(&format!("{} {}", uv.path.display(), uv.version));
        if let Some(old) = &old
            && old.key == key_now()
        {
            // Same uv by its answer, another file (reinstalled): refresh the quick key.
            let stamp = Stamp {
                quick: quick_now(),
                ..old.clone()
            };
            if let Ok(json) = serde_json::to_string_pretty(&stamp) {
                let _ = fsx::write_atomic(&stamp_path, json.as_bytes());
            }
            up_to_date();
            return Ok(());
        }
        // Only now pay for the full checks.
        let parsed = lock::parse(lock_path.as_str(), &String::from_utf8_lossy(&lock_bytes))?;
        if let Some(root) = parsed.root(reqs.name.as_deref()) {
            lock::ensure_fresh(lock_path.as_str(), &parsed, root, &reqs)?;
        }
        let installed = self.sync(&uv, project, &reqs, &plan)?;
        missing_asked(&plan, &installed)?;
        // Record success against what the environment looks like now.
        let mut command = vec![uv.path.display().to_string()];
        command.extend(plan.args.iter().cloned());
        let stamp = Stamp {
            key: key_now(),
            quick: quick_now(),
            command,
            extras: installed,
        };
        if venv.is_dir() {
            let json = serde_json::to_string_pretty(&stamp)?;
            fsx::write_atomic(&stamp_path, json.as_bytes())?;
        }
        errln!("{name}: done");
        Ok(())
    }

    /// `uv sync` with every extra (one by one where that fails), then playwright's
    /// browsers when asked; the extras that installed.
    fn sync(
        &self,
        uv: &Uv,
        project: &Utf8Path,
        reqs: &pyproject::Requirements,
        plan: &Plan,
    ) -> Result<Vec<String>> {
        let python = match &reqs.requires_python {
            Some(r) => uv::python_for(uv, project, r)?,
            None => None,
        };
        let sync = |extras: &[String]| {
            let mut c = uv.cmd().args(&plan.args).dir(project.as_std_path());
            if let Some(p) = &python {
                c = c.arg("--python").arg(p);
            }
            for e in extras {
                c = c.args(["--extra", e]);
            }
            c
        };
        // `uv sync` is exact: one run installs every extra, or a later run would take away
        // what an earlier one installed.
        let installed = if plan.extras.is_empty() {
            sync(&[]).run_status()?.check("uv sync")?;
            Vec::new()
        } else if sync(&plan.extras).run_status()?.exited("uv sync")? == Some(0) {
            plan.extras.clone()
        } else {
            extras_one_by_one(&sync, &plan.extras)?
        };
        if self.with_playwright {
            uv.cmd()
                .args(["run", "--frozen", "playwright", "install"])
                .dir(project.as_std_path())
                .run_status()?
                .check("playwright install")?;
        }
        Ok(installed)
    }
}

/// An extra asked with --extra that did not install fails the run (the others stay
/// installed; no stamp is written, so the next run tries again).
fn missing_asked(plan: &Plan, installed: &[String]) -> Result<()> {
    let missing: Vec<&str> = plan
        .asked
        .iter()
        .filter(|e| !installed.contains(e))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(error::failed(format!(
        "--extra {}: did not install (uv's message is above); {}",
        missing.join(", --extra "),
        if installed.is_empty() {
            "the project is installed without extras".to_string()
        } else {
            format!("installed with: {}", installed.join(", "))
        }
    )))
}

/// What to install: groups and extras, decided from the policy, the backend and --extra.
fn plan(
    policy: &crate::policy::Policy,
    reqs: &pyproject::Requirements,
    deps: Deps,
    asked: &[String],
) -> Result<Plan> {
    if let Some(unknown) = asked.iter().find(|e| !reqs.optional.contains_key(*e)) {
        let known: Vec<&str> = reqs.optional.keys().map(String::as_str).collect();
        return Err(error::usage(format!(
            "--extra {unknown}: pyproject.toml has no such extra ({})",
            if known.is_empty() {
                "it defines none".to_string()
            } else {
                format!("it defines: {}", known.join(", "))
            }
        )));
    }
    let (os, arch) = probe::os_arch();
    let target = policy.target_for_host(os, &arch);
    let mut args: Vec<String> = vec!["sync".into(), "--frozen".into()];
    match deps {
        Deps::Dev if reqs.groups.contains_key("dev") => {
            args.extend(["--group".into(), "dev".into()])
        }
        Deps::Dev => {}
        Deps::App => args.push("--no-dev".into()),
    }
    if let Some(group) = target.and_then(|t| t.group.as_ref())
        && reqs.groups.contains_key(group)
    {
        args.extend(["--group".into(), group.clone()]);
    }
    let backend = probe::quick_backend();
    let mut extras = Vec::new();
    for extra in &policy.app.cuda_extras {
        if !reqs.optional.contains_key(extra) {
            continue;
        }
        if backend == Backend::Cuda {
            extras.push(extra.clone());
        } else {
            errln!(
                "note: skipping the {extra} extra (CUDA-only; this host's backend is {})",
                backend.as_str()
            );
        }
    }
    for extra in asked {
        if !extras.contains(extra) {
            extras.push(extra.clone());
        }
    }
    Ok(Plan {
        args,
        extras,
        asked: asked.to_vec(),
    })
}

#[allow(clippy::too_many_arguments)]
fn stamp_key(
    pyproject: &[u8],
    lock: &[u8],
    args: &[String],
    extras: &[String],
    uv_id: &str,
    venv: &Utf8Path,
    playwright: bool,
) -> String {
    // The interpreter: pyvenv.cfg names it and its version; a new venv changes it.
    let cfg = std::fs::read(venv.join("pyvenv.cfg")).unwrap_or_default();
    fsx::fingerprint(&[
        pyproject,
        lock,
        args.join("\u{1f}").as_bytes(),
        extras.join(",").as_bytes(),
        uv_id.as_bytes(),
        &cfg,
        &[u8::from(playwright)],
    ])
}

fn read_stamp(path: &Utf8Path) -> Option<Stamp> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}
