//! Many nodes' validate reports as one view: a row per node (its counts and the names of
//! its failing checks), then the outliers, GPUs whose rate on a check is below a fraction
//! of the fleet's median for the same device model (CPU rates are not compared). A degraded GPU passes every
//! correctness check and only shows up slow. `slurm` and `kube` write the jobs that
//! gather the reports.

pub mod kube;
pub mod slurm;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use crate::error;
use crate::report::{Check, Report, Require, Status, count};

#[derive(Serialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum NodeState {
    /// Every check that ran passed (and `--require` was met).
    Ok,
    /// A check failed.
    Failed,
    /// The node was in the job but wrote no report.
    NoReport,
    /// Nothing failed, but a GPU's rate is an outlier.
    Slow,
    /// Nothing failed, but the required backend did not run.
    RequireUnmet,
}

#[derive(Serialize, Debug)]
pub struct NodeRow {
    pub node: String,
    pub state: NodeState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hostname: Option<String>,
    pub target: crate::report::HostTarget,
    pub backend: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub driver: Option<String>,
    pub gpus: usize,
    /// The compute capabilities of its GPUs (distinct, in order).
    pub compute_capability: Vec<String>,
    /// Whether the project's torch runs on its GPUs (level 1's `torch uses the GPU`):
    /// `runs`, `fails`, `unknown`, or absent where the node did not say.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torch: Option<&'static str>,
    /// Why, when it fails.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torch_why: Option<String>,
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub failing: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<Utf8PathBuf>,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct Outlier {
    pub node: String,
    pub check: String,
    pub device: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_uuid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_serial: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_pci_bus_id: Option<String>,
    pub rate: f64,
    pub unit: String,
    pub median: f64,
    pub fraction: f64,
}

#[derive(Serialize, Debug)]
pub struct Merged {
    pub slow_fraction: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub require: Option<&'static str>,
    pub nodes: Vec<NodeRow>,
    pub outliers: Vec<Outlier>,
}

/// One node's report and the file it came from.
pub struct Gathered {
    pub file: Utf8PathBuf,
    pub report: Report,
}

/// The reports in `paths`: files as given, folders by their `*.json` files (sorted).
pub fn read(paths: &[Utf8PathBuf]) -> Result<Vec<Gathered>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found: Vec<Utf8PathBuf> = p
                .read_dir_utf8()
                .map_err(|e| error::usage(format!("{p}: cannot list: {e}")))?
                .filter_map(|e| e.ok().map(|e| e.into_path()))
                .filter(|f| f.extension() == Some("json") && f.is_file())
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(p.clone());
        }
    }
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| error::usage(format!("{file}: cannot read: {e}")))?;
            let report = serde_json::from_str(&text).map_err(|e| {
                error::usage(format!(
                    "{file}: not a validate report ({e}); give reports written by `validate --output`"
                ))
            })?;
            Ok(Gathered { file, report })
        })
        .collect()
}

/// The device model of a check's device (`#0 NVIDIA GH200 480GB` → `NVIDIA GH200 480GB`).
fn model(c: &Check) -> String {
    c.device_name()
        .map_or(String::new(), |d| d.model.to_string())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// The name each report's node goes by; two reports of one node are told apart by file.
fn labels(reports: &[Gathered]) -> Vec<String> {
    reports
        .iter()
        .map(|g| {
            let n = g.report.host.node_name();
            let same = reports
                .iter()
                .filter(|o| o.report.host.node_name() == n)
                .count();
            if same > 1 {
                format!("{n} ({})", g.file.file_stem().unwrap_or("?"))
            } else {
                n.to_string()
            }
        })
        .collect()
}

fn row(label: String, g: &Gathered, require: Option<Require>) -> NodeRow {
    let r = &g.report;
    let n = |st| count(&r.checks, st);
    let failing = r.failed();
    let torch_check = r
        .checks
        .iter()
        .find(|c| c.group == crate::report::Group::Platform && c.name == "torch uses the GPU");
    let state = if !failing.is_empty() {
        NodeState::Failed
    } else if require.is_some_and(|q| !r.meets(q)) {
        NodeState::RequireUnmet
    } else {
        NodeState::Ok
    };
    NodeRow {
        node: label,
        state,
        hostname: Some(r.host.hostname.clone()),
        target: r.host.target.clone(),
        backend: r.host.backend.to_string(),
        driver: r.host.driver.clone(),
        gpus: r.host.gpus.len(),
        compute_capability: {
            let mut cc: Vec<String> = Vec::new();
            for c in r
                .host
                .gpus
                .iter()
                .filter_map(|g| g.compute_capability.clone())
            {
                if !cc.contains(&c) {
                    cc.push(c);
                }
            }
            cc
        },
        torch: torch_check.map(|c| match c.status {
            Status::Pass => "runs",
            Status::Fail => "fails",
            Status::Skip => "unknown",
        }),
        torch_why: torch_check
            .filter(|c| c.status == Status::Fail)
            .and_then(|c| c.reason.clone()),
        pass: n(Status::Pass),
        fail: n(Status::Fail),
        skip: n(Status::Skip),
        failing,
        report: Some(g.file.clone()),
    }
}

/// Merge the reports; `expected` names nodes that should have reported (a job's node
/// list): those without a report get a `no-report` row.
pub fn merge(
    reports: &[Gathered],
    expected: &[String],
    slow_fraction: f64,
    require: Option<Require>,
) -> Merged {
    let labels = labels(reports);
    let mut nodes: Vec<NodeRow> = reports
        .iter()
        .zip(&labels)
        .map(|(g, l)| row(l.clone(), g, require))
        .collect();
    for name in expected {
        if !reports.iter().any(|g| g.report.host.node_name() == name) {
            nodes.push(NodeRow {
                node: name.clone(),
                state: NodeState::NoReport,
                hostname: None,
                target: "?".into(),
                backend: "?".into(),
                driver: None,
                gpus: 0,
                compute_capability: Vec::new(),
                torch: None,
                torch_why: None,
                pass: 0,
                fail: 0,
                skip: 0,
                failing: Vec::new(),
                report: None,
            });
        }
    }
    let outliers = outliers(reports, &labels, slow_fraction);
    for n in &mut nodes {
        if n.state == NodeState::Ok && outliers.iter().any(|o| o.node == n.node) {
            n.state = NodeState::Slow;
        }
    }
    Merged {
        slow_fraction,
        require: require.map(Require::as_str),
        nodes,
        outliers,
    }
}

/// Rates by (check, device model, unit) across nodes; those below the fraction of
/// their median.
fn outliers(reports: &[Gathered], labels: &[String], slow_fraction: f64) -> Vec<Outlier> {
    type Key = (String, String, String);
    let mut by: Vec<(Key, Vec<(usize, &Check)>)> = Vec::new();
    for (i, g) in reports.iter().enumerate() {
        for c in &g.report.checks {
            let (Some(rate), Some(unit)) = (c.rate, &c.unit) else {
                continue;
            };
            // Only GPUs: CPU rates on a shared login or test host are noise, not a bad card.
            if !c.passed_on_gpu() || !rate.is_finite() {
                continue;
            }
            let key = (format!("{} {}", c.group, c.name), model(c), unit.clone());
            match by.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push((i, c)),
                None => by.push((key, vec![(i, c)])),
            }
        }
    }
    let mut out = Vec::new();
    for ((check, device, unit), values) in &by {
        if values.len() < 2 {
            continue;
        }
        let mut rates: Vec<f64> = values.iter().filter_map(|(_, c)| c.rate).collect();
        let med = median(&mut rates);
        for (i, c) in values {
            let rate = c.rate.unwrap_or(0.0);
            if med > 0.0 && rate < slow_fraction * med {
                let gpu = reports[*i].report.host.gpu_of(c);
                out.push(Outlier {
                    node: labels[*i].clone(),
                    check: check.clone(),
                    device: c.device.clone().unwrap_or_else(|| device.clone()),
                    gpu_uuid: c
                        .device_uuid
                        .clone()
                        .or_else(|| gpu.and_then(|g| g.uuid.clone())),
                    gpu_serial: gpu.and_then(|g| g.serial.clone()),
                    gpu_pci_bus_id: gpu.and_then(|g| g.pci_bus_id.clone()),
                    rate,
                    unit: unit.clone(),
                    median: med,
                    fraction: rate / med,
                });
            }
        }
    }
    out
}

impl Merged {
    /// The table for people.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let w = self
            .nodes
            .iter()
            .map(|n| n.node.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let mut s = format!(
            "{:w$}  {:13} {:18} {:7} {:>4} {:9} {:7} {:>4} {:>4} {:>4}  failing\n",
            "node", "state", "target", "backend", "gpus", "sm", "torch", "pass", "fail", "skip"
        );
        for n in &self.nodes {
            let state = match n.state {
                NodeState::Ok => "ok",
                NodeState::Failed => "FAILED",
                NodeState::NoReport => "NO REPORT",
                NodeState::Slow => "SLOW",
                NodeState::RequireUnmet => "REQUIRE UNMET",
            };
            let cc = if n.compute_capability.is_empty() {
                "-".to_string()
            } else {
                n.compute_capability.join(",")
            };
            let _ = writeln!(
                s,
                "{:w$}  {:13} {:18} {:7} {:>4} {:9} {:7} {:>4} {:>4} {:>4}  {}",
                n.node,
                state,
                n.target,
                n.backend,
                n.gpus,
                cc,
                n.torch.unwrap_or("-"),
                n.pass,
                n.fail,
                n.skip,
                n.failing.join(", ")
            );
        }
        let idle: Vec<&NodeRow> = self
            .nodes
            .iter()
            .filter(|n| n.torch == Some("fails"))
            .collect();
        if !idle.is_empty() {
            let _ = writeln!(s, "\ntorch cannot use the GPUs of {} node(s):", idle.len());
            for n in idle {
                let _ = writeln!(
                    s,
                    "  {}: {}",
                    n.node,
                    n.torch_why.as_deref().unwrap_or_default()
                );
            }
        }
        self.render_outliers(&mut s);
        s
    }

    /// The outliers under the table: each slow GPU with its identity and rate.
    fn render_outliers(&self, s: &mut String) {
        use std::fmt::Write as _;
        if self.outliers.is_empty() {
            let _ = writeln!(
                s,
                "\nno outliers: every rate is at least {:.2} of the fleet median for its device",
                self.slow_fraction
            );
            return;
        }
        let _ = writeln!(
            s,
            "\noutliers (below {:.2} of the fleet median for the same device):",
            self.slow_fraction
        );
        for o in &self.outliers {
            let mut id: Vec<String> = Vec::new();
            if let Some(u) = &o.gpu_uuid {
                id.push(u.clone());
            }
            if let Some(v) = &o.gpu_serial {
                id.push(format!("serial {v}"));
            }
            if let Some(v) = &o.gpu_pci_bus_id {
                id.push(format!("bus {v}"));
            }
            let id = if id.is_empty() {
                String::new()
            } else {
                format!(" ({})", id.join(", "))
            };
            let _ = writeln!(
                s,
                "  {}: {} [{}]{id} {:.1} {} = {:.2} of the median {:.1}",
                o.node, o.check, o.device, o.rate, o.unit, o.fraction, o.median
            );
        }
    }

    fn count(&self, state: NodeState) -> usize {
        self.nodes.iter().filter(|n| n.state == state).count()
    }

    /// Exit 1 when a node failed, reported nothing or is an outlier; 3 when only
    /// `--require` went unmet somewhere.
    pub fn verdict(&self) -> Result<()> {
        let failed = self.count(NodeState::Failed) + self.count(NodeState::NoReport);
        let unmet = self.count(NodeState::RequireUnmet);
        let total = self.nodes.len();
        let outliers = self.outliers.len();
        if failed > 0 || outliers > 0 {
            let mut slow_nodes: Vec<&str> = self.outliers.iter().map(|o| o.node.as_str()).collect();
            slow_nodes.sort_unstable();
            slow_nodes.dedup();
            return Err(error::failed(format!(
                "{failed} of {total} node(s) failed or wrote no report; {outliers} slow GPU check(s){}",
                if slow_nodes.is_empty() {
                    String::new()
                } else {
                    format!(" on {}", slow_nodes.join(", "))
                }
            )));
        }
        if unmet > 0 {
            return Err(error::absent(format!(
                "--require {}: {unmet} of {total} node(s) ran no {} check",
                self.require.unwrap_or("?"),
                self.require.unwrap_or("?"),
            )));
        }
        Ok(())
    }
}

/// `--slow-fraction` must be a fraction.
pub fn check_fraction(f: f64) -> Result<()> {
    if f > 0.0 && f <= 1.0 {
        Ok(())
    } else {
        Err(error::usage(format!(
            "--slow-fraction {f}: give a fraction in (0, 1], e.g. 0.8"
        )))
    }
}

/// A dist bundle: `<dir>/bin/xtask` beside `<dir>/templates/`.
pub fn check_bundle(dir: &Utf8Path) -> Result<()> {
    let xtask = dir.join("bin").join(crate::process::exe("xtask"));
    if xtask.is_file() && dir.join("templates").join("platforms.toml").is_file() {
        Ok(())
    } else {
        Err(error::usage(format!(
            "--bundle {dir}: not a dist bundle (no bin/xtask and templates/platforms.toml); run `cargo xtask dist` on a host of the nodes' architecture"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{DeviceKind, GpuId, Group, Host};

    fn check(name: &str, status: Status, rate: Option<f64>, uuid: &str) -> Check {
        Check {
            device_uuid: Some(uuid.into()),
            rate,
            unit: rate.map(|_| "GFLOP/s".into()),
            status,
            ..Check::new(Group::Cuda, Some("#0 NVIDIA GH200 480GB"), name)
                .on(DeviceKind::Cuda)
                .at_level(2)
        }
    }

    fn node(name: &str, gemm: f64, copy_status: Status) -> Gathered {
        let uuid = format!("GPU-{name}");
        Gathered {
            file: format!("reports/{name}.json").into(),
            report: Report {
                host: Host {
                    node: Some(name.into()),
                    job: Some("7".into()),
                    hostname: "gh".into(),
                    os: "linux".into(),
                    arch: crate::names::Arch::Aarch64,
                    target: "linux-aarch64-cuda".into(),
                    backend: crate::platform::Backend::Cuda,
                    driver: Some("570.124.06".into()),
                    gpus: vec![GpuId {
                        index: 0,
                        name: "NVIDIA GH200 480GB".into(),
                        uuid: Some(uuid.clone()),
                        serial: Some(format!("serial-{name}")),
                        pci_bus_id: Some("00000009:01:00.0".into()),
                        compute_capability: Some("9.0".into()),
                    }],
                    emulated: None,
                },
                versions: Default::default(),
                levels_run: vec![1, 2],
                checks: vec![
                    check("cuBLAS SGEMM", Status::Pass, Some(gemm), &uuid),
                    check("device copy", copy_status, None, &uuid),
                ],
            },
        }
    }

    #[test]
    fn a_slow_gpu_is_an_outlier_named_by_its_card_and_a_failure_is_named() {
        let reports = [
            node("node1", 51_000.0, Status::Pass),
            node("node2", 17_000.0, Status::Pass),
            node("node3", 50_000.0, Status::Fail),
        ];
        let m = merge(&reports, &[], 0.8, None);
        assert_eq!(m.outliers.len(), 1);
        let o = &m.outliers[0];
        assert_eq!(o.node, "node2");
        assert_eq!(o.gpu_uuid.as_deref(), Some("GPU-node2"));
        assert_eq!(o.gpu_serial.as_deref(), Some("serial-node2"));
        assert!((o.fraction - 0.34).abs() < 0.01);
        assert_eq!(m.nodes[2].failing, ["cuda device copy"]);
        assert_eq!(m.nodes[2].state, NodeState::Failed);
        assert_eq!(
            error::code_of(&m.verdict().unwrap_err()),
            error::Code::Failed
        );
        let text = m.render();
        assert!(
            text.contains("node2: cuda cuBLAS SGEMM [#0 NVIDIA GH200 480GB] (GPU-node2, serial serial-node2, bus 00000009:01:00.0) 17000.0 GFLOP/s = 0.34 of the median 50000.0"),
            "{text}"
        );
        // Two nodes: the slower one at a third of the other is still found.
        assert_eq!(merge(&reports[..2], &[], 0.8, None).outliers.len(), 1);
    }

    #[test]
    fn a_silent_node_fails_and_an_unmet_require_is_exit_3() {
        let reports = [node("node1", 50_000.0, Status::Pass)];
        let m = merge(&reports, &["node1".into(), "node2".into()], 0.8, None);
        assert_eq!(m.nodes[1].state, NodeState::NoReport);
        assert!(m.render().contains("NO REPORT"));
        assert_eq!(
            error::code_of(&m.verdict().unwrap_err()),
            error::Code::Failed
        );
        let m = merge(&reports, &[], 0.8, Some(Require::Mps));
        assert_eq!(m.nodes[0].state, NodeState::RequireUnmet);
        assert_eq!(
            error::code_of(&m.verdict().unwrap_err()),
            error::Code::Absent
        );
        assert!(
            merge(&reports, &[], 0.8, Some(Require::Cuda))
                .verdict()
                .is_ok()
        );
    }

    /// A mixed fleet: the Thor node's torch has no kernels for its GPU; its row says so
    /// with its compute capability, and the table names it under the rows.
    #[test]
    fn a_node_whose_gpu_the_torch_cannot_run_is_named() {
        let torch_check = |status, why: &str| {
            Check::new(Group::Platform, None, "torch uses the GPU")
                .with(status, why)
                .at_level(1)
        };
        let mut h100 = node("node1", 50_000.0, Status::Pass);
        h100.report.checks.push(torch_check(
            Status::Pass,
            "torch 2.8.0+cu128 runs on NVIDIA GH200 480GB (9.0, Hopper): sm_90",
        ));
        let mut thor = node("node2", 50_000.0, Status::Pass);
        thor.report.host.gpus[0].name = "NVIDIA Thor".into();
        thor.report.host.gpus[0].compute_capability = Some("11.0".into());
        let why = "torch 2.8.0+cu128 (CUDA 12.8) carries sm_80 sm_90 sm_100 sm_120; NVIDIA Thor (11.0, Blackwell): no kernels for sm_110";
        thor.report.checks.push(torch_check(Status::Fail, why));
        let m = merge(&[h100, thor], &[], 0.8, None);
        assert_eq!(m.nodes[0].torch, Some("runs"));
        assert_eq!(m.nodes[1].torch, Some("fails"));
        assert_eq!(m.nodes[1].compute_capability, ["11.0"]);
        assert_eq!(m.nodes[1].state, NodeState::Failed);
        let text = m.render();
        assert!(
            text.contains(&format!(
                "torch cannot use the GPUs of 1 node(s):\n  node2: {why}"
            )),
            "{text}"
        );
        let row = text.lines().find(|l| l.starts_with("node2")).unwrap();
        assert!(row.contains(" 11.0 ") && row.contains(" fails "), "{row}");
    }
}
