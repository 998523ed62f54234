//! `cargo xtask requirements`: per-target requirements files (or one pylock.toml)
//! generated from uv.lock, with hashes, keeping every package's platform and index.

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use crate::ctx::Ctx;
use crate::error;
use crate::fsx;
use crate::lock::export::{
    PerTarget, default_registry, installs, pylock, requirements_txt, universal_txt,
};
use crate::lock::{self, Selection};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    /// One requirements file per target, with hashes
    Txt,
    /// One PEP 751 pylock.toml for every target, with markers and indexes
    Pylock,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Unlike `uv export` with markers stripped (what the Makefile did), nothing is dropped silently. \
requirements.txt in the project (the file the app's README installs from) serves every target: a \
package only some targets install carries their markers. requirements/<target>.txt is for one \
target (named in its header) and pins every package with its hashes. Packages from an explicit \
index (torch from the PyTorch indexes) are written as `name @ <wheel URL>` so a plain \
`pip install -r` cannot take them from the wrong index. --format pylock writes one pylock.toml \
whose packages carry their markers and index.

Examples:
  cargo xtask requirements
  cargo xtask requirements --target arm64-cuda --group dev")]
pub struct Requirements {
    #[arg(long, value_enum, default_value_t = Format::Txt)]
    format: Format,
    /// Only this target (canonical name or Docker alias); repeatable [default: all]
    #[arg(long = "target", value_name = "NAME")]
    targets: Vec<String>,
    /// Folder to write into [default: <project>/requirements]
    #[arg(long, value_name = "DIR")]
    output_dir: Option<Utf8PathBuf>,
    /// Include a dependency group (none by default, as the Makefile's --no-dev); repeatable
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Include an optional extra; repeatable
    #[arg(long = "extra", value_name = "EXTRA")]
    extras: Vec<String>,
}

impl Requirements {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let targets = policy.select(&self.targets)?;
        let proj = lock::Project::load(project)?;
        proj.ensure_fresh()?;
        let chosen = proj.choose(&Selection {
            extras: self.extras.clone(),
            groups: self.groups.clone(),
            no_default_groups: true,
            ..Selection::default()
        })?;
        let out_dir = self
            .output_dir
            .clone()
            .unwrap_or_else(|| project.join("requirements"));
        std::fs::create_dir_all(&out_dir)
            .map_err(|e| error::usage(format!("--output-dir {out_dir}: cannot create: {e}")))?;
        let per_target = installs(&proj, &targets, &chosen)?;
        match self.format {
            Format::Txt => self.write_txt(&proj, project, &out_dir, &per_target),
            Format::Pylock => {
                let path = out_dir.join("pylock.toml");
                let body = pylock(&proj.lock, &per_target, policy);
                fsx::write_atomic(&path, body.as_bytes())?;
                outln!("{path}: {} targets", per_target.len());
                Ok(())
            }
        }
    }

    /// One requirements file per target, and the Makefile's requirements.txt (what the
    /// app's README installs from): every target, each package with its targets' markers.
    fn write_txt(
        &self,
        proj: &lock::Project,
        project: &Utf8Path,
        out_dir: &Utf8Path,
        per_target: &PerTarget,
    ) -> Result<()> {
        let lock = &proj.lock;
        let python = proj.python()?;
        let py = format!("{}.{}", python.0, python.1);
        let default_index = default_registry(lock);
        for (t, rows) in per_target {
            let path = out_dir.join(format!("{}.txt", t.name));
            let body = requirements_txt(lock, t, &py, rows, default_index.as_deref(), &path);
            fsx::write_atomic(&path, body.as_bytes())?;
            outln!("{path}: {} packages for {}", rows.len(), t.name);
        }
        if !self.targets.is_empty() {
            return Ok(());
        }
        let path = match &self.output_dir {
            Some(d) => d.join("requirements.txt"),
            None => project.join("requirements.txt"),
        };
        let (body, lines) = universal_txt(lock, per_target, &py, default_index.as_deref());
        fsx::write_atomic(&path, body.as_bytes())?;
        let names: Vec<&str> = per_target.iter().map(|(t, _)| t.name.as_str()).collect();
        outln!(
            "{path}: {lines} requirements for every target ({}), markers kept",
            names.join(", ")
        );
        Ok(())
    }
}
