//! `cargo xtask dist`: a per-architecture bundle (xtask and tensor-smoke binaries plus
//! templates/) that runs `validate` on compute nodes without a Rust toolchain.

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use crate::ctx::Ctx;
use crate::error;
use crate::names::{Arch, Os};
use crate::process::{self, Cmd};
use crate::smoke;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    Release,
    Dev,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Builds for this machine's architecture (run it once on an x86_64 and once on an aarch64 host, or in \
their containers). Unpack the .tar.gz on storage the nodes share; `bin/xtask fleet validate \
--scheduler slurm --nodes N` runs it on every node and merges (or `bin/xtask validate --output \
'reports/{node}.json'` on each node, then `bin/xtask fleet merge reports/`).")]
pub struct Dist {
    /// Cargo profile to build with
    #[arg(long, value_enum, default_value_t = Profile::Release)]
    profile: Profile,
    /// Where to write the bundle [default: <workspace>/dist]
    #[arg(long, value_name = "DIR")]
    out: Option<Utf8PathBuf>,
}

impl Dist {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        let cargo = process::cargo().unwrap_or_else(|| "cargo".into());
        let ws = &ctx.workspace;
        if !ws.join("tensor-smoke").join("Cargo.toml").is_file() {
            return Err(error::usage(format!(
                "{ws}: not the xtask workspace (no tensor-smoke/): run dist from a checkout"
            )));
        }
        let (os, arch) = (Os::host(), Arch::host());
        let (flag, dir) = match self.profile {
            Profile::Release => (Some("--release"), "release"),
            Profile::Dev => (None, "debug"),
        };
        let build = |pkg: &str, features: Option<&str>| {
            let mut c = Cmd::new(&cargo)
                .args(["build", "-p", pkg])
                .dir(ws.as_std_path());
            if let Some(f) = flag {
                c = c.arg(f);
            }
            if let Some(f) = features {
                c = c.args(["--features", f]);
            }
            c.run_shown()
        };
        build("xtask", None)?;
        // A bundle runs on GPU nodes: always with CUDA.
        build("tensor-smoke", Some(smoke::features(os, true)))?;
        let target = smoke::target_dir(ws);
        let out = self.out.clone().unwrap_or_else(|| ws.join("dist"));
        let name = crate::ctx::bundle_name();
        let root = out.join(&name);
        if root.exists() {
            std::fs::remove_dir_all(&root)?;
        }
        std::fs::create_dir_all(root.join("bin"))
            .map_err(|e| error::usage(format!("--out {out}: cannot create: {e}")))?;
        for bin in ["xtask", "tensor-smoke"] {
            let file = process::exe(bin);
            std::fs::copy(target.join(dir).join(&file), root.join("bin").join(&file))?;
        }
        // templates/ for every command; docker/ for `docker build|run|clean|render`.
        for folder in ["templates", "docker"] {
            copy_tree(&ws.join(folder), &root.join(folder))?;
        }
        std::fs::write(
            root.join("README.txt"),
            format!(
                "llmstudio-xtask for {os}-{arch}: run `bin/xtask validate` (levels 1-2 need nothing else;\n\
                 levels 3-4 take --project DIR and uv). On a Slurm login node, `bin/xtask fleet validate\n\
                 --scheduler slurm --nodes N` validates every node and names the bad one; elsewhere run\n\
                 `bin/xtask validate --output 'reports/{{node}}.json'` on each node, then `bin/xtask fleet merge\n\
                 reports/`. Every other command works from here too\n\
                 (`bin/xtask --project APP test`, `docker build`, ...): templates/ and docker/ are its data.\n"
            ),
        )?;
        let tarball = out.join(format!("{name}.tar.gz"));
        Cmd::new("tar")
            .args(["-czf", tarball.as_str(), "-C", out.as_str(), &name])
            .run_shown()?;
        let size = std::fs::metadata(&tarball).map(|m| m.len()).unwrap_or(0);
        outln!("{tarball} ({:.1} MiB)", size as f64 / (1 << 20) as f64);
        outln!("{root}/bin/xtask validate");
        Ok(())
    }
}

fn copy_tree(from: &Utf8Path, to: &Utf8Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in from.read_dir_utf8()? {
        let e = e?;
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            if e.file_name() != "__pycache__" {
                copy_tree(e.path(), &dest)?;
            }
        } else {
            std::fs::copy(e.path(), dest)?;
        }
    }
    Ok(())
}
