//! The bundled tensor-smoke: which features a host gets, where its binary is (a flag, a
//! dist bundle, or built now from the workspace), and its checks read back. `validate`
//! runs it; `dist` builds it into the bundle.

use std::path::PathBuf;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;

use crate::error;
use crate::names::Os;
use crate::process::{Cmd, cargo, exe};
use crate::report::{Check, Group};

/// The features a build for this OS gets: wgpu (Metal or Vulkan) where it has a
/// backend, and CUDA on Linux and Windows when `cuda` (a dist bundle always, a build for
/// this host when it has an NVIDIA driver or GPU: cudarc is a third of the build).
pub fn features(os: Os, cuda: bool) -> &'static str {
    match os {
        Os::Linux | Os::Windows if cuda => "cuda,wgpu",
        Os::Linux | Os::Windows | Os::Macos => "wgpu",
        Os::Other(_) => "cpu",
    }
}

/// A tensor-smoke to run, and whether its CUDA checks were built.
pub struct Binary {
    pub path: PathBuf,
    /// False when it was built here without CUDA (no NVIDIA driver or GPU).
    pub cuda: bool,
}

/// Cargo's target directory for the workspace (`$CARGO_TARGET_DIR` when set).
pub fn target_dir(workspace: &Utf8Path) -> Utf8PathBuf {
    std::env::var("CARGO_TARGET_DIR")
        .map(Utf8PathBuf::from)
        .unwrap_or_else(|_| workspace.join("target"))
}

/// `--smoke-bin`, a tensor-smoke beside this binary (a dist bundle), or one built now in
/// the workspace (dev profile: tensor-smoke's own code is optimised there, see Cargo.toml;
/// with CUDA when `cuda_here`). The error is the reason level 2 is skipped.
pub fn binary(
    flag: Option<&Utf8Path>,
    workspace: &Utf8Path,
    cuda_here: bool,
) -> Result<Binary, String> {
    let prebuilt = |path: PathBuf| Binary { path, cuda: true };
    if let Some(p) = flag {
        return if p.is_file() {
            Ok(prebuilt(p.to_path_buf().into_std_path_buf()))
        } else {
            Err(format!("--smoke-bin {p} does not exist"))
        };
    }
    if let Some(root) = crate::ctx::bundle_root() {
        let bundled = root.join("bin").join(exe("tensor-smoke"));
        if bundled.is_file() {
            return Ok(prebuilt(bundled.into_std_path_buf()));
        }
    }
    if !workspace.join("tensor-smoke").join("Cargo.toml").is_file() {
        return Err("no tensor-smoke: pass --smoke-bin PATH (see `cargo xtask dist`)".into());
    }
    let Some(cargo) = cargo() else {
        return Err(
            "no cargo to build tensor-smoke: pass --smoke-bin PATH (see `cargo xtask dist`)".into(),
        );
    };
    let features = features(Os::host(), cuda_here);
    errln!("building tensor-smoke ({features}); the first build takes a minute or two");
    Cmd::new(&cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "tensor-smoke",
            "--features",
            features,
        ])
        .dir(workspace.as_std_path())
        .run_shown()
        .map_err(|e| format!("building tensor-smoke failed: {}", error::line_of(&e)))?;
    let path = target_dir(workspace)
        .join("debug")
        .join(exe("tensor-smoke"));
    Ok(Binary {
        path: path.into_std_path_buf(),
        cuda: features.contains("cuda"),
    })
}

/// Run it and read its checks; a crash or an unreadable report is one failed check.
pub fn run(bin: &Binary, quick: bool) -> Vec<Check> {
    let mut cmd = Cmd::new(&bin.path).arg("--json");
    if quick {
        cmd = cmd.arg("--quick");
    }
    let mut checks = Vec::new();
    if !bin.cuda {
        cmd = cmd.args(["--backend", "cpu", "--backend", "wgpu"]);
        let why = "no NVIDIA driver or GPU on this host, so tensor-smoke was built without CUDA";
        checks.push(Check::skip(Group::Cuda, None, "cuda", why));
    }
    if std::env::var_os("XDG_RUNTIME_DIR").is_none() {
        cmd = cmd.env("XDG_RUNTIME_DIR", std::env::temp_dir());
    }
    errln!("$ {}", cmd.display());
    let probe = cmd.probe(Duration::from_secs(600));
    let failed = |why: String| vec![Check::fail(Group::Cpu, None, "tensor-smoke", why)];
    let Some(stdout) = probe.any_stdout() else {
        return failed(format!("tensor-smoke {}", probe.failure_line()));
    };
    #[derive(Deserialize)]
    struct SmokeReport {
        checks: Vec<Check>,
    }
    match serde_json::from_str::<SmokeReport>(stdout) {
        Ok(r) => r.checks.into_iter().chain(checks).collect(),
        Err(e) => failed(format!("unreadable report: {e}")),
    }
}
