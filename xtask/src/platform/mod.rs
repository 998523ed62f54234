//! What this machine is: OS, architecture, the target it maps to, the GPU backend
//! present with its evidence, and the tools found.
//!
//! `parse` holds pure functions over recorded command outputs (unit-tested with
//! fixtures); `probe` is the thin layer that runs the commands and loads libraries.

pub mod machine;
pub mod parse;
pub mod probe;

use camino::Utf8PathBuf;
use serde::Serialize;

use crate::names::{Arch, Os};
use crate::policy::HostTarget;

/// The accelerator actually present. The target (lock environment) is separate:
/// an x86_64 Linux host without NVIDIA is target `linux-x86_64-cuda`, backend `cpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Cuda,
    Mps,
    Cpu,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cuda => "cuda",
            Backend::Mps => "mps",
            Backend::Cpu => "cpu",
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One GPU, NVIDIA (from nvidia-smi) or Apple (from system_profiler).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Gpu {
    pub index: u32,
    pub vendor: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_mib: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<String>,
    /// The architecture family of its compute capability (Hopper, Blackwell), from the
    /// policy's `[gpu-families]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metal: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Cuda {
    /// Whether libcuda could be loaded (dlopen), with the error when not.
    pub libcuda_loadable: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub libcuda_error: Option<String>,
    /// The CUDA version the driver supports (cuDriverGetVersion, else nvidia-smi's banner).
    pub driver_cuda_version: Option<String>,
    /// The kernel driver version (nvidia-smi).
    pub driver_version: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Apple {
    pub chip: Option<String>,
    pub metal: Option<String>,
    pub memory_bytes: Option<u64>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Tool {
    pub path: Utf8PathBuf,
    pub version: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Python {
    pub path: Utf8PathBuf,
    pub version: String,
    pub source: PythonSource,
}

/// Where an interpreter was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PythonSource {
    /// On PATH.
    Path,
    /// Under pyenv's versions folder.
    Pyenv,
}

#[derive(Clone, Debug, Serialize)]
pub struct DockerClient {
    pub path: Utf8PathBuf,
    pub version: Option<String>,
    pub buildx: Option<String>,
    pub buildkit: BuildKit,
}

impl std::fmt::Display for PythonSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PythonSource::Path => "path",
            PythonSource::Pyenv => "pyenv",
        })
    }
}

/// How a docker client can build with BuildKit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildKit {
    /// `docker buildx build`.
    Buildx,
    /// `DOCKER_BUILDKIT=1 docker build`: a client older than 23 has BuildKit built in.
    Legacy,
    /// Neither: a client from 23 on without the buildx plugin.
    None,
}

impl BuildKit {
    /// Clients from 23 on need the buildx plugin for BuildKit; older ones have the
    /// builder built in and use it with DOCKER_BUILDKIT=1.
    pub fn of(client_version: Option<&str>, buildx: bool) -> BuildKit {
        if buildx {
            return BuildKit::Buildx;
        }
        match client_version.and_then(parse::major) {
            Some(m) if m < 23 => BuildKit::Legacy,
            _ => BuildKit::None,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Docker {
    pub clients: Vec<DockerClient>,
    /// The daemon's version when one answers.
    pub daemon: Option<String>,
    /// Why no daemon answered (absent when one did or no client exists).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub daemon_error: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Tools {
    pub uv: Option<Tool>,
    pub pythons: Vec<Python>,
    pub docker: Docker,
    pub nvidia_smi: Option<Tool>,
    pub nvcc: Option<Tool>,
}

/// Everything `platform` reports.
#[derive(Clone, Debug, Serialize)]
pub struct Platform {
    pub os: Os,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub os_version: Option<String>,
    pub arch: Arch,
    pub arch_raw: String,
    /// Set when this binary runs emulated (Rosetta 2, QEMU user mode).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulation: Option<machine::Emulation>,
    /// What this binary was built for, and the bundle it runs from.
    pub binary: Binary,
    /// The policy's target for this OS and architecture.
    pub target: HostTarget,
    pub backend: Backend,
    pub backend_evidence: Vec<String>,
    pub gpus: Vec<Gpu>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cuda: Option<Cuda>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apple: Option<Apple>,
    pub tools: Tools,
    pub warnings: Vec<String>,
}

/// The build of `xtask` that answered: its Rust target triple, and the `dist` bundle it
/// runs from, if any (a bundle's name carries the architecture it is for).
#[derive(Clone, Debug, Serialize)]
pub struct Binary {
    pub target: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bundle: Option<Utf8PathBuf>,
}

impl Binary {
    pub fn this() -> Binary {
        Binary {
            target: env!("XTASK_BUILD_TARGET"),
            bundle: crate::ctx::bundle_root(),
        }
    }
}

impl Platform {
    /// Whether NVIDIA is here at all: a driver library that loads, or a GPU nvidia-smi lists.
    pub fn has_nvidia(&self) -> bool {
        self.cuda.as_ref().is_some_and(|c| c.libcuda_loadable)
            || self.gpus.iter().any(|g| g.vendor == "nvidia")
    }
}

/// Decide the backend from what was seen, with the evidence for it.
pub fn decide_backend(
    os: Os,
    arch: &Arch,
    gpus: &[Gpu],
    cuda: Option<&Cuda>,
    apple: Option<&Apple>,
) -> (Backend, Vec<String>) {
    let nvidia: Vec<&Gpu> = gpus.iter().filter(|g| g.vendor == "nvidia").collect();
    let mut evidence = Vec::new();
    if os == Os::Linux {
        let loadable = cuda.is_some_and(|c| c.libcuda_loadable);
        match (nvidia.len(), loadable) {
            (0, false) => evidence.push("no NVIDIA GPU listed by nvidia-smi".to_string()),
            (0, true) => {
                evidence.push("libcuda loads but nvidia-smi lists no NVIDIA GPU".to_string())
            }
            (n, false) => {
                let why = cuda
                    .and_then(|c| c.libcuda_error.clone())
                    .unwrap_or_else(|| "not found".into());
                evidence.push(format!(
                    "nvidia-smi lists {n} GPU(s) but libcuda cannot be loaded: {why}"
                ));
            }
            (n, true) => {
                let names = summarize_names(&nvidia);
                let cuda_v = cuda
                    .and_then(|c| c.driver_cuda_version.clone())
                    .map(|v| format!(", driver supports CUDA {v}"))
                    .unwrap_or_default();
                evidence.push(format!("{n} NVIDIA GPU(s): {names}; libcuda loads{cuda_v}"));
                return (Backend::Cuda, evidence);
            }
        }
    }
    if os == Os::Macos {
        let metal = apple.and_then(|a| a.metal.clone());
        match (arch, metal) {
            (Arch::Aarch64, Some(m)) => {
                let chip = apple
                    .and_then(|a| a.chip.clone())
                    .unwrap_or_else(|| "Apple GPU".into());
                evidence.push(format!("{chip} with {m}: PyTorch's MPS backend can run"));
                return (Backend::Mps, evidence);
            }
            (Arch::Aarch64, None) => {
                evidence.push("system_profiler reports no Metal-capable GPU".to_string())
            }
            _ => evidence.push(format!(
                "macOS on {arch}: PyTorch's MPS backend needs Apple Silicon"
            )),
        }
    }
    if !matches!(os, Os::Linux | Os::Macos) {
        evidence.push(format!("no GPU backend is supported on {os}"));
    }
    (Backend::Cpu, evidence)
}

/// "8 × NVIDIA H100 80GB HBM3" or "NVIDIA A100, NVIDIA L4".
fn summarize_names(gpus: &[&Gpu]) -> String {
    let first = &gpus[0].name;
    if gpus.iter().all(|g| &g.name == first) {
        if gpus.len() == 1 {
            first.clone()
        } else {
            format!("{} × {first}", gpus.len())
        }
    } else {
        gpus.iter()
            .map(|g| g.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nvidia(name: &str) -> Gpu {
        Gpu {
            vendor: "nvidia".into(),
            name: name.into(),
            ..Gpu::default()
        }
    }

    #[test]
    fn cuda_needs_gpus_and_libcuda() {
        let gpus = vec![nvidia("NVIDIA H100"), nvidia("NVIDIA H100")];
        let ok = Cuda {
            libcuda_loadable: true,
            driver_cuda_version: Some("12.8".into()),
            ..Cuda::default()
        };
        let (b, ev) = decide_backend(Os::Linux, &Arch::X86_64, &gpus, Some(&ok), None);
        assert_eq!(b, Backend::Cuda);
        assert!(ev[0].contains("2 × NVIDIA H100"), "{ev:?}");
        assert!(ev[0].contains("CUDA 12.8"), "{ev:?}");

        let broken = Cuda {
            libcuda_error: Some("libcuda.so.1: cannot open shared object file".into()),
            ..Cuda::default()
        };
        let (b, ev) = decide_backend(Os::Linux, &Arch::X86_64, &gpus, Some(&broken), None);
        assert_eq!(b, Backend::Cpu);
        assert!(ev[0].contains("cannot be loaded"), "{ev:?}");

        let (b, _) = decide_backend(Os::Linux, &Arch::Aarch64, &[], None, None);
        assert_eq!(b, Backend::Cpu);
    }

    #[test]
    fn mps_needs_apple_silicon_with_metal() {
        let apple = Apple {
            chip: Some("Apple M3".into()),
            metal: Some("Metal 3".into()),
            memory_bytes: None,
        };
        let (b, ev) = decide_backend(Os::Macos, &Arch::Aarch64, &[], None, Some(&apple));
        assert_eq!(b, Backend::Mps);
        assert!(ev[0].starts_with("Apple M3 with Metal 3"), "{ev:?}");
        let (b, _) = decide_backend(Os::Macos, &Arch::X86_64, &[], None, Some(&apple));
        assert_eq!(b, Backend::Cpu);
        let (b, _) = decide_backend(Os::Macos, &Arch::Aarch64, &[], None, None);
        assert_eq!(b, Backend::Cpu);
    }
}
