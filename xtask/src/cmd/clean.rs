//! `cargo xtask clean env|data|output|all`: the Makefile's clean-env, clean-data and
//! clean-output, saying what goes and never reaching outside the project.

use anyhow::Result;
use camino::Utf8Path;

use crate::ctx::{self, Ctx};
use crate::error;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// .venv (Makefile: clean-env)
    Env,
    /// data/ (Makefile: clean-data)
    Data,
    /// output/ (Makefile: clean-output)
    Output,
    /// all three
    All,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Removes the project's .venv, data/ or output/ and prints each with its size. A folder that is a \
symbolic link loses the link only (its target is left alone); anything that resolves outside \
the project is refused (exit 2).

Examples:
  cargo xtask clean output
  cargo xtask clean all --dry-run")]
pub struct Clean {
    /// What to remove
    #[arg(value_enum, required = true, value_name = "KIND")]
    kinds: Vec<Kind>,
    /// Say what would be removed; remove nothing
    #[arg(long)]
    dry_run: bool,
}

impl Clean {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let project = ctx.project()?;
        let mut names: Vec<&str> = Vec::new();
        for k in &self.kinds {
            let add: &[&str] = match k {
                Kind::Env => &[".venv"],
                Kind::Data => &["data"],
                Kind::Output => &["output"],
                Kind::All => &[".venv", "data", "output"],
            };
            for n in add {
                if !names.contains(n) {
                    names.push(n);
                }
            }
        }
        // Check every path before removing any.
        let mut plan = Vec::new();
        for name in names {
            let path = project.join(name);
            let Ok(meta) = std::fs::symlink_metadata(&path) else {
                outln!("{path}: nothing there");
                continue;
            };
            if meta.file_type().is_symlink() {
                plan.push((path, true, 0, 0));
                continue;
            }
            let real = ctx::absolute(&path)?;
            if !real.starts_with(project) {
                return Err(error::usage(format!(
                    "{path} resolves to {real}, outside the project: remove it yourself if you mean it"
                )));
            }
            let (files, bytes) = size(&real);
            plan.push((path, false, files, bytes));
        }
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for (path, link, files, bytes) in plan {
            if link {
                let target = std::fs::read_link(&path)
                    .map(|t| t.display().to_string())
                    .unwrap_or_default();
                if !self.dry_run {
                    std::fs::remove_file(&path)
                        .map_err(|e| error::usage(format!("{path}: cannot remove: {e}")))?;
                }
                outln!("{path}: {verb} the link (its target {target} is left alone)");
                continue;
            }
            if !self.dry_run {
                let gone = if path.is_dir() {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
                gone.map_err(|e| error::usage(format!("{path}: cannot remove: {e}")))?;
            }
            outln!(
                "{path}: {verb} ({files} files, {:.1} MiB)",
                bytes as f64 / (1 << 20) as f64
            );
        }
        Ok(())
    }
}

/// Files and bytes under a path (links not followed).
fn size(path: &Utf8Path) -> (u64, u64) {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return (0, 0);
    };
    if !meta.is_dir() {
        return (1, meta.len());
    }
    let Ok(entries) = path.read_dir_utf8() else {
        return (0, 0);
    };
    entries.filter_map(Result::ok).fold((0, 0), |(f, b), e| {
        let (ef, eb) = size(e.path());
        (f + ef, b + eb)
    })
}
