//! What a run found: one check per (backend, device, name), pass / fail / skip.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    Skip,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub backend: String,
    pub device: Option<String>,
    /// The device's UUID as nvidia-smi writes it (`GPU-…`), where the backend knows it:
    /// what names one GPU of a node in a fleet's report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_uuid: Option<String>,
    pub name: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_abs_err: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seconds: Option<f64>,
    /// A rate: GB/s or GFLOP/s (see `unit`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// The rate as a fraction of the device's known peak.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_fraction: Option<f64>,
}

impl Check {
    pub fn new(backend: &str, device: Option<&str>, name: &str) -> Check {
        Check {
            backend: backend.into(),
            device: device.map(str::to_string),
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
        backend: &str,
        device: Option<&str>,
        name: &str,
        reason: impl Into<String>,
    ) -> Check {
        Check::new(backend, device, name).with(Status::Skip, reason)
    }

    pub fn fail(
        backend: &str,
        device: Option<&str>,
        name: &str,
        reason: impl Into<String>,
    ) -> Check {
        Check::new(backend, device, name).with(Status::Fail, reason)
    }

    fn with(self, status: Status, reason: impl Into<String>) -> Check {
        Check {
            status,
            reason: Some(reason.into()),
            ..self
        }
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

    /// Whether a backend ran at least one check (passed or failed).
    pub fn ran(&self, backend: &str) -> bool {
        self.checks
            .iter()
            .any(|c| c.backend == backend && c.status != Status::Skip)
    }

    pub fn table(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let status = match c.status {
                Status::Pass => "pass",
                Status::Fail => "FAIL",
                Status::Skip => "skip",
            };
            let mut line = format!(
                "{status:4}  {:5} {:44} {:30}",
                c.backend,
                c.device.as_deref().unwrap_or("-"),
                c.name
            );
            if let (Some(r), Some(u)) = (c.rate, &c.unit) {
                line.push_str(&format!(" {r:10.1} {u}"));
                if let Some(p) = c.peak_fraction {
                    line.push_str(&format!(" ({:.0}% of peak)", p * 100.0));
                }
            }
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
