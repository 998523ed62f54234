//! `cargo xtask dist`: a per-architecture bundle (xtask and tensor-smoke binaries plus
//! templates/) that runs `validate` on compute nodes without a Rust toolchain, for this
//! machine or, with `--target`, for another architecture.

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use crate::ctx::Ctx;
use crate::elf::{self, Glibc};
use crate::error;
use crate::fsx;
use crate::names::Os;
use crate::process::{self, Cmd};
use crate::smoke;
use crate::toolchain::{self, Linker, Triple};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
enum Profile {
    Release,
    Dev,
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
Without --target it builds for this machine. `--target aarch64-unknown-linux-gnu` from an x86_64 \
laptop builds the bundle a Grace Hopper / Grace Blackwell cluster runs: it needs the target's \
standard library (`rustup target add aarch64-unknown-linux-gnu`) and a linker for it: `cargo \
zigbuild` when it is installed with zig (`cargo install --locked cargo-zigbuild`, `pip install \
ziglang`), which links against the policy's glibc floor (2.28) so the binaries run on Ubuntu 22.04 \
and older; else CARGO_TARGET_<TRIPLE>_LINKER, else a cross gcc (`aarch64-linux-gnu-gcc`). The \
bundle is named for its OS and architecture (llmstudio-xtask-linux-aarch64). Unpack the .tar.gz \
on storage the nodes share; `bin/xtask fleet validate --scheduler slurm --nodes N` runs it on \
every node and merges (or `bin/xtask validate --output 'reports/{node}.json'` on each node, then \
`bin/xtask fleet merge reports/`).")]
pub struct Dist {
    /// Rust target triple to build for [default: this machine's]
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
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
        let cargo = Utf8PathBuf::from_path_buf(cargo)
            .map_err(|p| error::usage(format!("{}: cargo's path is not UTF-8", p.display())))?;
        let ws = &ctx.workspace;
        if !ws.join("tensor-smoke").join("Cargo.toml").is_file() {
            return Err(error::usage(format!(
                "{ws}: not the xtask workspace (no tensor-smoke/): run dist from a checkout"
            )));
        }
        let host = Triple::this();
        let target = match &self.target {
            Some(t) => Triple::parse(t)?,
            None => host.clone(),
        };
        let floor = glibc_floor(ctx, &target)?;
        let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
        toolchain::check_std(Utf8Path::new(&rustc), ws, &target)?;
        let linker = toolchain::choose_linker(&target, &host, floor)?;
        errln!(
            "dist for {} ({}-{}): linking with {}",
            target.triple,
            target.os,
            target.arch,
            linker.describe(&target)
        );
        self.compile(ctx, &cargo, &target, &linker)?;
        let dir = match self.profile {
            Profile::Release => "release",
            Profile::Dev => "debug",
        };
        let built = toolchain::out_dir(&smoke::target_dir(ws), &target, &linker, dir);
        let out = self.out.clone().unwrap_or_else(|| ws.join("dist"));
        let name = crate::ctx::bundle_name(target.os, &target.arch);
        let root = out.join(&name);
        assemble(ws, &root, &built, &target, floor, &linker)?;
        let tarball = out.join(format!("{name}.tar.gz"));
        Cmd::new("tar")
            .args(["-czf", tarball.as_str(), "-C", out.as_str(), &name])
            .run_shown()?;
        let size = std::fs::metadata(&tarball).map(|m| m.len()).unwrap_or(0);
        outln!("{tarball} ({:.1} MiB)", size as f64 / (1 << 20) as f64);
        outln!("{root}/bin/xtask validate");
        Ok(())
    }

    /// Build xtask and tensor-smoke (with CUDA where the OS has it: a bundle runs on GPU
    /// nodes) for the target.
    fn compile(&self, ctx: &Ctx, cargo: &Utf8Path, target: &Triple, linker: &Linker) -> Result<()> {
        let mut env: Vec<(String, String)> = Vec::new();
        if target.os == Os::Macos
            && std::env::var_os("MACOSX_DEPLOYMENT_TARGET").is_none()
            && let Some(v) = macos_floor(ctx, target)?
        {
            env.push(("MACOSX_DEPLOYMENT_TARGET".into(), v));
        }
        let build = |pkg: &str, features: Option<&str>| {
            let mut c =
                toolchain::build_cmd(cargo, target, linker, pkg).dir(ctx.workspace.as_std_path());
            if self.profile == Profile::Release {
                c = c.arg("--release");
            }
            if let Some(f) = features {
                c = c.args(["--features", f]);
            }
            for (k, v) in &env {
                c = c.env(k, v);
            }
            c.run_shown()
        };
        build("xtask", None)?;
        build("tensor-smoke", Some(smoke::features(target.os, true)))
    }
}

/// The bundle's folder: bin/ (each binary held to the glibc floor on Linux), templates/
/// and docker/, and a README.
fn assemble(
    ws: &Utf8Path,
    root: &Utf8Path,
    built: &Utf8Path,
    target: &Triple,
    floor: Option<Glibc>,
    linker: &Linker,
) -> Result<()> {
    if root.exists() {
        fs_err::remove_dir_all(root)?;
    }
    let out = root.parent().unwrap_or(root);
    std::fs::create_dir_all(root.join("bin"))
        .map_err(|e| error::usage(format!("--out {out}: cannot create: {e}")))?;
    let suffix = if target.os == Os::Windows { ".exe" } else { "" };
    for bin in ["xtask", "tensor-smoke"] {
        let file = format!("{bin}{suffix}");
        let dest = root.join("bin").join(&file);
        fs_err::copy(built.join(&file), &dest)?;
        if target.os == Os::Linux {
            check_elf(&dest, target, floor, linker)?;
        }
    }
    // templates/ for every command; docker/ for `docker build|run|clean|render`.
    for folder in ["templates", "docker"] {
        fsx::copy_tree(
            ws.join(folder).as_std_path(),
            root.join(folder).as_std_path(),
            &["__pycache__"],
        )?;
    }
    let (os, arch) = (target.os, &target.arch);
    std::fs::write(
        root.join("README.txt"),
        format!(
            "llmstudio-xtask for {os}-{arch} ({}): run `bin/xtask validate` (levels 1-2 need nothing else;\n\
             levels 3-4 take --project DIR and uv). On a Slurm login node, `bin/xtask fleet validate\n\
             --scheduler slurm --nodes N` validates every node and names the bad one; elsewhere run\n\
             `bin/xtask validate --output 'reports/{{node}}.json'` on each node, then `bin/xtask fleet merge\n\
             reports/`. Every other command works from here too\n\
             (`bin/xtask --project APP test`, `docker build`, ...): templates/ and docker/ are its data.\n",
            target.triple
        ),
    )?;
    Ok(())
}

/// The policy's glibc floor for the target's machines (its `glibc` wheel floor).
fn glibc_floor(ctx: &Ctx, t: &Triple) -> Result<Option<Glibc>> {
    if !t.gnu {
        return Ok(None);
    }
    let policy = ctx.policy()?;
    Ok(policy
        .target_for_host(t.os, &t.arch)
        .and_then(|p| p.glibc.as_deref())
        .and_then(elf::glibc))
}

/// The policy's macOS floor for the target (`MACOSX_DEPLOYMENT_TARGET`).
fn macos_floor(ctx: &Ctx, t: &Triple) -> Result<Option<String>> {
    let policy = ctx.policy()?;
    Ok(policy
        .target_for_host(t.os, &t.arch)
        .and_then(|p| p.macos.clone()))
}

/// A bundled binary is for the target's CPU and, where the linker chose the floor, runs on
/// the policy's oldest glibc; said for each binary.
fn check_elf(path: &Utf8Path, t: &Triple, floor: Option<Glibc>, linker: &Linker) -> Result<()> {
    let bytes = fs_err::read(path)?;
    let elf = elf::read(&bytes).map_err(|e| error::failed(format!("{path}: {e}")))?;
    if elf.arch != t.arch {
        return Err(error::failed(format!(
            "{path}: built for {} where {} was asked (a linker for the wrong CPU?)",
            elf.arch, t.arch
        )));
    }
    let needs = elf.glibc.map_or("no versioned glibc symbols".into(), |g| {
        format!("needs glibc {g}")
    });
    match (elf.glibc, floor) {
        (Some(g), Some(f)) if g > f => {
            let msg = format!(
                "{path}: {needs}, above the policy's floor {f}: nodes with an older glibc cannot run it"
            );
            if matches!(linker, Linker::Zig { .. }) {
                return Err(error::failed(msg));
            }
            errln!(
                "warning: {msg}; install cargo-zigbuild and zig to link for glibc {f} (see --help)"
            );
        }
        (_, Some(f)) => errln!("{path}: {}, {needs} (floor {f})", elf.arch),
        (_, None) => errln!("{path}: {}, {needs}", elf.arch),
    }
    Ok(())
}
