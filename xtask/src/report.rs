//! validate's report: the host it ran on (with the identity a fleet needs to name one
//! node and one GPU), the versions it saw, and its checks. Written by `validate
//! --output`, read by `fleet merge`; what `--require` means is judged here, once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

pub use crate::policy::HostTarget;

/// The checks: one type for tensor-smoke, the torch script and validate's own.
pub use tensor_smoke::report::{Check, DeviceKind, Group, Status, count};

/// One GPU as the node's driver names it: what a person needs to pull the right card.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GpuId {
    pub index: u32,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uuid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pci_bus_id: Option<String>,
    /// Its compute capability (`9.0`), as nvidia-smi gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_capability: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Host {
    /// The scheduler's name for the node ($SLURMD_NODENAME, or $NODE_NAME as a
    /// Kubernetes pod is usually given it), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The scheduler's job, when the report was made inside one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    pub hostname: String,
    /// Rust's name (`linux`, `macos`): kept as written, since a report read back may
    /// come from a system this build has no name for.
    pub os: String,
    pub arch: crate::names::Arch,
    pub target: HostTarget,
    pub backend: crate::platform::Backend,
    /// The NVIDIA kernel driver's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default)]
    pub gpus: Vec<GpuId>,
    /// Set when the report was made by an emulated binary (QEMU user mode, Rosetta 2):
    /// its rates are the emulator's, not the hardware's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub emulated: Option<String>,
}

impl Host {
    /// The name a fleet knows the node by: the scheduler's, else the hostname.
    pub fn node_name(&self) -> &str {
        self.node.as_deref().unwrap_or(&self.hostname)
    }

    /// The GPU a check ran on, by UUID, else by the `#N` ordinal of its device.
    pub fn gpu_of(&self, c: &Check) -> Option<&GpuId> {
        if let Some(u) = &c.device_uuid {
            return self.gpus.iter().find(|g| g.uuid.as_ref() == Some(u));
        }
        let ordinal = c.device_name()?.ordinal?;
        // Without a UUID the ordinal matches nvidia-smi's index only when every GPU is visible.
        if std::env::var_os("CUDA_VISIBLE_DEVICES").is_some() {
            return None;
        }
        self.gpus.iter().find(|g| g.index == ordinal)
    }
}

/// The scheduler's node and job names this process runs under, from its environment.
pub fn scheduler_identity() -> (Option<String>, Option<String>) {
    let first = |vars: &[&str]| {
        vars.iter()
            .find_map(|v| std::env::var(v).ok().filter(|n| !n.trim().is_empty()))
    };
    (
        first(&["SLURMD_NODENAME", "NODE_NAME"]),
        first(&["SLURM_JOB_ID", "JOB_NAME"]),
    )
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Report {
    pub host: Host,
    pub versions: BTreeMap<String, String>,
    pub levels_run: Vec<u8>,
    pub checks: Vec<Check>,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Require {
    Cuda,
    Mps,
    Gpu,
}

impl Require {
    /// Whether this check shows the required backend working.
    pub fn met_by(self, c: &Check) -> bool {
        match self {
            Require::Cuda => c.status == Status::Pass && c.device_kind == Some(DeviceKind::Cuda),
            Require::Mps => c.status == Status::Pass && c.device_kind == Some(DeviceKind::Metal),
            Require::Gpu => c.passed_on_gpu(),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Require::Cuda => "cuda",
            Require::Mps => "mps",
            Require::Gpu => "gpu",
        }
    }
}

impl Report {
    /// The checks that failed, as `group name`.
    pub fn failed(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| format!("{} {}", c.group, c.name))
            .collect()
    }

    /// Whether a check passed on the required kind of device: tensor-smoke's CUDA or
    /// Metal checks, torch on CUDA or MPS, or (for `gpu`) any GPU adapter.
    pub fn meets(&self, req: Require) -> bool {
        self.checks.iter().any(|c| req.met_by(c))
    }

    /// The table for people.
    pub fn table(&self) -> String {
        let r = self;
        let mut s = String::new();
        let gpus: Vec<&str> = r.host.gpus.iter().map(|g| g.name.as_str()).collect();
        let _ = writeln!(
            s,
            "{} ({} {}, target {}, backend {}){}",
            r.host.node_name(),
            r.host.os,
            r.host.arch,
            r.host.target,
            r.host.backend,
            if gpus.is_empty() {
                String::new()
            } else {
                format!(": {}", gpus.join(", "))
            }
        );
        for c in &r.checks {
            s.push_str(&row(c));
        }
        let n = |st| count(&r.checks, st);
        let _ = writeln!(
            s,
            "{} passed, {} failed, {} skipped (levels {:?})",
            n(Status::Pass),
            n(Status::Fail),
            n(Status::Skip),
            r.levels_run
        );
        s
    }
}

fn row(c: &Check) -> String {
    let mut line = format!(
        "{:4} L{} {:8} {:26} {}{}",
        c.status.label(),
        c.level,
        c.group.as_str(),
        c.name,
        c.device
            .as_deref()
            .map(|d| format!("[{d}]"))
            .unwrap_or_default(),
        c.rate_text()
    );
    if let Some(r) = &c.reason {
        let _ = write!(line, " - {r}");
    }
    format!("{}\n", line.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(checks: Vec<Check>) -> Report {
        Report {
            host: Host {
                node: None,
                job: None,
                hostname: "h".into(),
                os: "macos".into(),
                arch: crate::names::Arch::Aarch64,
                target: "macos-arm64-mps".into(),
                backend: crate::platform::Backend::Mps,
                driver: None,
                gpus: Vec::new(),
                emulated: None,
            },
            versions: BTreeMap::new(),
            levels_run: vec![1, 2, 3],
            checks,
        }
    }

    #[test]
    fn require_is_judged_on_the_device_kind() {
        let torch_mps =
            Check::new(Group::Torch, Some("mps"), "matmul 256x256 vs CPU").on(DeviceKind::Metal);
        let r = report(vec![torch_mps.clone()]);
        assert!(r.meets(Require::Mps) && r.meets(Require::Gpu) && !r.meets(Require::Cuda));
        // A failed check, or one on the CPU (lavapipe, torch without a GPU), meets nothing.
        let failed = torch_mps.with(Status::Fail, "wrong");
        let lavapipe = Check::new(Group::Wgpu, Some("llvmpipe (Vulkan, Cpu)"), "fill (WGSL)")
            .on(DeviceKind::Cpu);
        let r = report(vec![failed, lavapipe]);
        assert!(!r.meets(Require::Mps) && !r.meets(Require::Gpu));
        let vulkan_gpu = Check::new(
            Group::Wgpu,
            Some("RTX (Vulkan, DiscreteGpu)"),
            "fill (WGSL)",
        )
        .on(DeviceKind::Vulkan);
        let r = report(vec![vulkan_gpu]);
        assert!(r.meets(Require::Gpu) && !r.meets(Require::Cuda) && !r.meets(Require::Mps));
        assert!(r.table().contains("1 passed, 0 failed, 0 skipped"));
    }

    #[test]
    fn a_report_reads_back_typed() {
        let written = serde_json::to_value(report(Vec::new())).unwrap();
        assert_eq!(written["host"]["arch"], "aarch64");
        assert_eq!(written["host"]["backend"], "mps");
        let mut other = written.clone();
        other["host"]["arch"] = "arm64".into(); // as Docker or macOS spell it
        let back: Report = serde_json::from_value(other).unwrap();
        assert_eq!(back.host.arch, crate::names::Arch::Aarch64);
        assert_eq!(back.host.backend, crate::platform::Backend::Mps);
        let mut unknown = written;
        unknown["host"]["backend"] = "rocm".into();
        let e = serde_json::from_value::<Report>(unknown).unwrap_err();
        assert!(e.to_string().contains("unknown variant `rocm`"), "{e}");
    }
}
