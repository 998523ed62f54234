//! validate's report: the host it ran on (with the identity a fleet needs to name one
//! node and one GPU), the versions it saw, and its checks. Written by `validate
//! --output`, read by `fleet merge`; what `--require` means is judged here, once.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// 1-4; reports of tensor-smoke and the torch script have none (set when read).
    #[serde(default)]
    pub level: u8,
    /// platform, cpu, cuda, wgpu, torch, pytest (tensor-smoke calls it `backend`)
    #[serde(default, alias = "backend")]
    pub group: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The GPU's UUID (`GPU-…`) where the check knows it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_uuid: Option<String>,
    pub name: String,
    /// pass, fail, skip
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_abs_err: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_fraction: Option<f64>,
}

impl Check {
    pub fn new(level: u8, group: &str, name: &str, status: &str, reason: Option<String>) -> Check {
        Check {
            level,
            group: group.into(),
            device: None,
            device_uuid: None,
            name: name.into(),
            status: status.into(),
            reason,
            max_abs_err: None,
            tolerance: None,
            seconds: None,
            rate: None,
            unit: None,
            peak_fraction: None,
        }
    }
}

impl Check {
    /// Whether the check ran on a GPU (not the CPU reference, a software Vulkan
    /// adapter such as lavapipe, or torch on the CPU).
    pub fn on_gpu(&self) -> bool {
        let device = self.device.as_deref().unwrap_or("");
        match self.group.as_str() {
            "cuda" => true,
            "wgpu" => !device.is_empty() && !device.contains(", Cpu)"),
            "torch" => !device.is_empty() && device != "cpu",
            _ => false,
        }
    }
}

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
    pub os: String,
    pub arch: String,
    pub target: String,
    pub backend: String,
    /// The NVIDIA kernel driver's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    #[serde(default)]
    pub gpus: Vec<GpuId>,
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
        let ordinal: u32 = c
            .device
            .as_deref()?
            .strip_prefix('#')?
            .split(' ')
            .next()?
            .parse()
            .ok()?;
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
            .filter(|c| c.status == "fail")
            .map(|c| format!("{} {}", c.group, c.name))
            .collect()
    }

    /// Whether a check on the required backend passed: tensor-smoke's CUDA or Metal
    /// checks, or torch on that device (or, for `gpu`, any GPU adapter wgpu drove).
    pub fn meets(&self, req: Require) -> bool {
        let passed = |c: &&Check| c.status == "pass";
        let ran = |group: &str| self.checks.iter().filter(passed).any(|c| c.group == group);
        let metal =
            self.checks.iter().filter(passed).any(|c| {
                c.group == "wgpu" && c.device.as_deref().is_some_and(|d| d.contains("Metal"))
            });
        let torch_on = |dev: &str| {
            self.checks
                .iter()
                .filter(passed)
                .any(|c| c.group == "torch" && c.name == format!("torch sees {dev}"))
        };
        match req {
            Require::Cuda => ran("cuda") || torch_on("CUDA"),
            Require::Mps => metal || torch_on("MPS"),
            Require::Gpu => {
                ran("cuda")
                    || metal
                    || torch_on("CUDA")
                    || torch_on("MPS")
                    || self
                        .checks
                        .iter()
                        .filter(passed)
                        .any(|c| c.group == "wgpu" && c.on_gpu())
            }
        }
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
        let n = |st: &str| r.checks.iter().filter(|c| c.status == st).count();
        let _ = writeln!(
            s,
            "{} passed, {} failed, {} skipped (levels {:?})",
            n("pass"),
            n("fail"),
            n("skip"),
            r.levels_run
        );
        s
    }
}

fn row(c: &Check) -> String {
    let status = if c.status == "fail" {
        "FAIL"
    } else {
        c.status.as_str()
    };
    let mut line = format!(
        "{status:4} L{} {:8} {:26} {}",
        c.level,
        c.group,
        c.name,
        c.device
            .as_deref()
            .map(|d| format!("[{d}]"))
            .unwrap_or_default()
    );
    if let (Some(rate), Some(unit)) = (c.rate, &c.unit) {
        let _ = write!(line, " {rate:.1} {unit}");
        if let Some(p) = c.peak_fraction {
            let _ = write!(line, " ({:.0}% of peak)", p * 100.0);
        }
    }
    if let Some(r) = &c.reason {
        let _ = write!(line, " - {r}");
    }
    format!("{}\n", line.trim_end())
}
