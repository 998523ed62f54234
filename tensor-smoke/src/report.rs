//! What a run found: one check per (group, device, name), pass / fail / skip.
//!
//! This is the one check vocabulary of the workspace: tensor-smoke writes it, the torch
//! script of `validate --level 3` writes the same fields, and `xtask validate` adds its
//! own groups (platform, pytest) and the level. With default features this module needs
//! serde alone, so the xtask binary shares it without any GPU crate.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }

    /// As a table shows it: failures stand out.
    pub fn label(self) -> &'static str {
        match self {
            Status::Fail => "FAIL",
            other => other.as_str(),
        }
    }

    /// Pass when `ok`, else fail.
    pub fn of(ok: bool) -> Status {
        if ok { Status::Pass } else { Status::Fail }
    }
}

/// Which part of a run a check belongs to: a tensor-smoke backend, torch, or the
/// platform and test checks of `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    Platform,
    Cpu,
    Cuda,
    Wgpu,
    Torch,
    Pytest,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Platform => "platform",
            Group::Cpu => "cpu",
            Group::Cuda => "cuda",
            Group::Wgpu => "wgpu",
            Group::Torch => "torch",
            Group::Pytest => "pytest",
        }
    }
}

impl fmt::Display for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a check computed on. A software rasteriser's Vulkan adapter (lavapipe) runs on
/// the host's CPU, and so does torch without a GPU: both are `Cpu`. torch's MPS is Metal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceKind {
    Cpu,
    Cuda,
    Metal,
    Vulkan,
}

impl DeviceKind {
    pub fn is_gpu(self) -> bool {
        self != DeviceKind::Cpu
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    /// validate's level (1-4); 0 (and absent) in tensor-smoke's and the torch script's
    /// own reports, which validate sets when it reads them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub level: u8,
    #[serde(alias = "backend")]
    pub group: Group,
    #[serde(default)]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_kind: Option<DeviceKind>,
    /// The device's UUID as nvidia-smi writes it (`GPU-…`), where the backend knows it:
    /// what names one GPU of a node in a fleet's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_uuid: Option<String>,
    pub name: String,
    pub status: Status,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_abs_err: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// A rate: GB/s or GFLOP/s (see `unit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The rate as a fraction of the device's known peak.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_fraction: Option<f64>,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// A check's device as the reports write it: `#ORDINAL MODEL` where the backend numbers its
/// devices (`#0 NVIDIA GH200 480GB`), else the model alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceName<'a> {
    pub ordinal: Option<u32>,
    pub model: &'a str,
}

impl<'a> DeviceName<'a> {
    pub fn parse(text: &'a str) -> DeviceName<'a> {
        let text = text.trim();
        let numbered = text.strip_prefix('#').and_then(|rest| {
            let (n, model) = rest.split_once(' ').unwrap_or((rest, ""));
            Some((n.parse().ok()?, model.trim()))
        });
        match numbered {
            Some((n, model)) => DeviceName {
                ordinal: Some(n),
                model,
            },
            None => DeviceName {
                ordinal: None,
                model: text,
            },
        }
    }
}

impl Check {
    pub fn new(group: Group, device: Option<&str>, name: &str) -> Check {
        Check {
            level: 0,
            group,
            device: device.map(str::to_string),
            device_kind: None,
            device_uuid: None,
            name: name.into(),
            status: Status::Pass,
            reason: None,
            max_abs_err: None,
            tolerance: None,
            seconds: None,
            rate: None,
            unit: None,
            peak_fraction: None,
        }
    }

    pub fn skip(
        group: Group,
        device: Option<&str>,
        name: &str,
        reason: impl Into<String>,
    ) -> Check {
        Check::new(group, device, name).with(Status::Skip, reason)
    }

    pub fn fail(
        group: Group,
        device: Option<&str>,
        name: &str,
        reason: impl Into<String>,
    ) -> Check {
        Check::new(group, device, name).with(Status::Fail, reason)
    }

    /// The device's ordinal and model, read from [`Check::device`].
    pub fn device_name(&self) -> Option<DeviceName<'_>> {
        self.device.as_deref().map(DeviceName::parse)
    }

    /// This status, for this reason.
    pub fn with(self, status: Status, reason: impl Into<String>) -> Check {
        Check {
            status,
            reason: Some(reason.into()),
            ..self
        }
    }

    /// At this level of `validate`.
    pub fn at_level(self, level: u8) -> Check {
        Check { level, ..self }
    }

    /// Computed on this kind of device.
    pub fn on(self, kind: DeviceKind) -> Check {
        Check {
            device_kind: Some(kind),
            ..self
        }
    }

    /// Whether it passed on a GPU: not the CPU reference, a software Vulkan adapter such
    /// as lavapipe, or torch on the CPU.
    pub fn passed_on_gpu(&self) -> bool {
        self.status == Status::Pass && self.device_kind.is_some_and(DeviceKind::is_gpu)
    }

    /// Pass when `err <= tol`, else fail with the numbers.
    pub fn compared(mut self, err: f64, tol: f64) -> Check {
        self.max_abs_err = Some(err);
        self.tolerance = Some(tol);
        if err.is_nan() || err > tol {
            self.status = Status::Fail;
            self.reason = Some(format!("max |error| {err:.3e} exceeds tolerance {tol:.3e}"));
        }
        self
    }

    pub fn timed(mut self, seconds: f64, rate: f64, unit: &str, peak: Option<f64>) -> Check {
        self.seconds = Some(seconds);
        self.rate = Some(rate);
        self.unit = Some(unit.into());
        self.peak_fraction = peak.filter(|p| *p > 0.0).map(|p| rate / p);
        self
    }

    /// The rate, with the peak fraction when known: ` 19.0 GFLOP/s (12% of peak)`.
    pub fn rate_text(&self) -> String {
        let (Some(r), Some(u)) = (self.rate, &self.unit) else {
            return String::new();
        };
        match self.peak_fraction {
            Some(p) => format!(" {r:.1} {u} ({:.0}% of peak)", p * 100.0),
            None => format!(" {r:.1} {u}"),
        }
    }
}

/// Every check computed on this kind of device.
pub fn on(kind: DeviceKind, mut checks: Vec<Check>) -> Vec<Check> {
    for c in &mut checks {
        c.device_kind = Some(kind);
    }
    checks
}

/// How many checks have each status.
pub fn count(checks: &[Check], status: Status) -> usize {
    checks.iter().filter(|c| c.status == status).count()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    pub tool: String,
    pub version: String,
    pub os: String,
    pub arch: String,
    pub checks: Vec<Check>,
}

impl Report {
    pub fn new(checks: Vec<Check>) -> Report {
        Report {
            tool: "tensor-smoke".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            checks,
        }
    }

    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// Whether a group ran at least one check (passed or failed).
    pub fn ran(&self, group: Group) -> bool {
        self.checks
            .iter()
            .any(|c| c.group == group && c.status != Status::Skip)
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let mut line = format!(
                "{:4}  {:5} {:44} {:30}{}",
                c.status.label(),
                c.group.as_str(),
                c.device.as_deref().unwrap_or("-"),
                c.name,
                c.rate_text()
            );
            if let (Some(e), Some(t)) = (c.max_abs_err, c.tolerance) {
                line.push_str(&format!("  err {e:.1e} <= {t:.1e}"));
            }
            if let Some(r) = &c.reason {
                line.push_str(&format!("  {r}"));
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_name_splits_into_ordinal_and_model() {
        let d = |t| DeviceName::parse(t);
        assert_eq!(d("#3 NVIDIA H100 80GB HBM3").ordinal, Some(3));
        assert_eq!(d("#3 NVIDIA H100 80GB HBM3").model, "NVIDIA H100 80GB HBM3");
        assert_eq!(
            d("#0"),
            DeviceName {
                ordinal: Some(0),
                model: ""
            }
        );
        assert_eq!(
            d("Apple M2 Max"),
            DeviceName {
                ordinal: None,
                model: "Apple M2 Max"
            }
        );
        assert_eq!(d("#x card").ordinal, None);
        assert_eq!(d("#x card").model, "#x card");
    }

    #[test]
    fn reads_the_old_and_new_field_names() {
        let old: Check = serde_json::from_str(
            r##"{"backend":"cuda","device":"#0","name":"fill","status":"pass"}"##,
        )
        .unwrap();
        assert_eq!(
            (old.group, old.status, old.level),
            (Group::Cuda, Status::Pass, 0)
        );
        let c = Check::new(Group::Wgpu, Some("llvmpipe"), "copy").on(DeviceKind::Cpu);
        let text = serde_json::to_string(&c).unwrap();
        assert!(
            text.contains(r#""group":"wgpu""#) && text.contains(r#""device_kind":"cpu""#),
            "{text}"
        );
        assert!(!text.contains("level"), "{text}");
        assert!(!c.passed_on_gpu());
        assert!(c.on(DeviceKind::Vulkan).passed_on_gpu());
        assert!(
            serde_json::from_str::<Check>(r#"{"group":"tpu","name":"x","status":"pass"}"#).is_err()
        );
    }
}
