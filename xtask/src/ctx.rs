//! What every command receives: where the workspace is, which Python project to act
//! on, and how to emit machine-readable output.

use anyhow::{Context as _, Result};
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::error;
use crate::fsx;
use crate::policy::Policy;

pub struct Ctx {
    /// The root of this Cargo workspace (where `templates/` lives).
    pub workspace: Utf8PathBuf,
    /// `--policy` / `XTASK_POLICY`; the policy itself is loaded on first use.
    policy_flag: Option<Utf8PathBuf>,
    policy: std::cell::OnceCell<Policy>,
    /// `--project` / `XTASK_PROJECT`, validated, or the workspace root when it holds a
    /// pyproject.toml.
    project: Option<Utf8PathBuf>,
}

impl Ctx {
    /// Resolve the project. An explicit `--project` must be a folder holding a
    /// pyproject.toml; without one, the workspace root is used when it has one.
    pub fn new(project_flag: Option<Utf8PathBuf>, policy_flag: Option<Utf8PathBuf>) -> Result<Ctx> {
        let workspace = workspace_root();
        let project = match project_flag {
            Some(dir) => {
                if !dir.is_dir() {
                    return Err(error::usage(format!(
                        "--project {dir}: no such directory (give the folder that holds the app's pyproject.toml)"
                    )));
                }
                if !dir.join("pyproject.toml").is_file() {
                    return Err(error::usage(format!(
                        "--project {dir}: no pyproject.toml in that folder (give the folder that holds the app's pyproject.toml)"
                    )));
                }
                // Absolute from here on: children run inside the project, and paths
                // handed to them (PYTHONPATH, --junitxml, the Wave private dir) must
                // mean the same there as they did to the user.
                Some(absolute(&dir)?)
            }
            None => workspace
                .join("pyproject.toml")
                .is_file()
                .then(|| workspace.clone()),
        };
        Ok(Ctx {
            workspace,
            project,
            policy_flag,
            policy: std::cell::OnceCell::new(),
        })
    }

    /// The Python project, or a usage error naming `--project`.
    pub fn project(&self) -> Result<&Utf8Path> {
        self.project.as_deref().ok_or_else(|| {
            error::usage(format!(
                "no Python project: {} has no pyproject.toml; pass --project DIR (or set XTASK_PROJECT)",
                self.workspace
            ))
        })
    }

    /// The support matrix: `--policy FILE`, else templates/platforms.toml.
    pub fn policy(&self) -> Result<&Policy> {
        if let Some(p) = self.policy.get() {
            return Ok(p);
        }
        let loaded = Policy::load(&self.workspace, self.policy_flag.as_deref())?;
        Ok(self.policy.get_or_init(|| loaded))
    }

    pub fn project_opt(&self) -> Option<&Utf8Path> {
        self.project.as_deref()
    }

    /// The files the commands read: the project's pyproject.toml and uv.lock, and the
    /// policy (so `--output` can never overwrite one of them).
    fn inputs(&self) -> Vec<Utf8PathBuf> {
        let mut out = vec![match &self.policy_flag {
            Some(p) => p.clone(),
            None => self.workspace.join(crate::policy::DEFAULT_PATH),
        }];
        if let Some(p) = &self.project {
            out.push(p.join("pyproject.toml"));
            out.push(p.join("uv.lock"));
        }
        out
    }
}

/// A path as an absolute one, symbolic links and `..` resolved.
pub fn absolute(path: &Utf8Path) -> Result<Utf8PathBuf> {
    path.canonicalize_utf8()
        .map_err(|e| error::usage(format!("{path}: cannot resolve: {e}")))
}

/// The workspace root: the `dist` bundle the binary sits in, else where this crate was
/// built from (the usual `cargo xtask` case), else the current directory.
fn workspace_root() -> Utf8PathBuf {
    if let Some(root) = bundle_root() {
        return root;
    }
    let built = Utf8Path::new(env!("CARGO_MANIFEST_DIR"));
    if let Some(root) = built.parent()
        && root.join("Cargo.toml").is_file()
    {
        return root.to_path_buf();
    }
    std::env::current_dir()
        .ok()
        .and_then(|d| Utf8PathBuf::from_path_buf(d).ok())
        .unwrap_or_else(|| Utf8PathBuf::from("."))
}

/// The name of this machine's `cargo xtask dist` bundle: `llmstudio-xtask-<os>-<arch>`.
pub fn bundle_name(os: crate::names::Os, arch: &crate::names::Arch) -> String {
    format!("llmstudio-xtask-{os}-{arch}")
}

/// The root of a `cargo xtask dist` bundle this binary runs from (`<root>/bin/xtask`
/// beside `<root>/templates/`), if it does.
pub fn bundle_root() -> Option<Utf8PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let bin = exe.parent()?;
    if bin.file_name()? != "bin" {
        return None;
    }
    let root = bin.parent()?;
    if !root.join("templates").join("platforms.toml").is_file() {
        return None;
    }
    Utf8PathBuf::from_path_buf(root.to_path_buf()).ok()
}

/// `--json` and `--output FILE`, shared by every command a machine might read.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct OutputArgs {
    /// Print the result as one JSON object on stdout instead of a table
    #[arg(long)]
    pub json: bool,
    /// Also write the JSON result to FILE (atomically)
    #[arg(long, value_name = "FILE")]
    pub output: Option<Utf8PathBuf>,
}

impl OutputArgs {
    /// Check `--output` can be written, and is none of the command's inputs, before
    /// doing any work.
    pub fn preflight(&self, ctx: &Ctx) -> Result<()> {
        if let Some(path) = &self.output {
            let same =
                |a: &Utf8Path, b: &Utf8Path| match (a.canonicalize_utf8(), b.canonicalize_utf8()) {
                    (Ok(a), Ok(b)) => a == b,
                    _ => false,
                };
            if let Some(input) = ctx.inputs().iter().find(|i| same(path, i)) {
                return Err(error::usage(format!(
                    "--output {path}: that is {input}, which this command reads; choose another file"
                )));
            }
            fsx::check_writable(path).map_err(|e| {
                error::usage(format!("--output {path}: {e:#} (choose a writable path)"))
            })?;
        }
        Ok(())
    }

    /// Print `human()` or the JSON, and save the JSON when asked.
    pub fn emit<T: Serialize>(&self, value: &T, human: impl FnOnce() -> String) -> Result<()> {
        if !self.json && self.output.is_none() {
            out!("{}", human());
            return Ok(());
        }
        let json = serde_json::to_string_pretty(value).context("serialising the result")?;
        if let Some(path) = &self.output {
            fsx::write_atomic(path, format!("{json}\n").as_bytes())
                .map_err(|e| error::usage(format!("--output {path}: {e:#}")))?;
        }
        if self.json {
            outln!("{json}");
        } else {
            out!("{}", human());
        }
        Ok(())
    }
}
