//! Many nodes' validate reports as one view: a row per node (its counts and the names of
//! its failing checks), then the outliers, nodes whose rate on a check is below a fraction
//! of the fleet's median for the same device model. A degraded GPU passes every
//! correctness check and only shows up slow.

use serde::Serialize;

/// What the merge needs of one check.
pub struct Measured<'a> {
    pub group: &'a str,
    pub name: &'a str,
    pub device: Option<&'a str>,
    pub status: &'a str,
    pub rate: Option<f64>,
    pub unit: Option<&'a str>,
}

/// One node's report, as the merge sees it.
pub struct NodeReport<'a> {
    /// The scheduler's node name, else the hostname.
    pub node: String,
    pub target: &'a str,
    pub backend: &'a str,
    pub checks: Vec<Measured<'a>>,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct NodeRow {
    pub node: String,
    pub target: String,
    pub backend: String,
    pub pass: usize,
    pub fail: usize,
    pub skip: usize,
    pub failing: Vec<String>,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct Outlier {
    pub node: String,
    pub check: String,
    pub device: String,
    pub rate: f64,
    pub unit: String,
    pub median: f64,
    pub fraction: f64,
}

#[derive(Serialize, Debug)]
pub struct Merged {
    pub slow_fraction: f64,
    pub nodes: Vec<NodeRow>,
    pub outliers: Vec<Outlier>,
}

/// The device model of a check's device (`#0 NVIDIA GH200 480GB` → `NVIDIA GH200 480GB`).
fn model(device: Option<&str>) -> String {
    let d = device.unwrap_or("").trim();
    match d.strip_prefix('#') {
        Some(rest) => rest
            .split_once(' ')
            .map_or(rest, |(_, m)| m)
            .trim()
            .to_string(),
        None => d.to_string(),
    }
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

pub fn merge(reports: &[NodeReport], slow_fraction: f64) -> Merged {
    let nodes = reports
        .iter()
        .map(|r| {
            let n = |st: &str| r.checks.iter().filter(|c| c.status == st).count();
            NodeRow {
                node: r.node.clone(),
                target: r.target.to_string(),
                backend: r.backend.to_string(),
                pass: n("pass"),
                fail: n("fail"),
                skip: n("skip"),
                failing: r
                    .checks
                    .iter()
                    .filter(|c| c.status == "fail")
                    .map(|c| format!("{} {}", c.group, c.name))
                    .collect(),
            }
        })
        .collect();
    // Rates by (check, device model), across nodes.
    type Key = (String, String, String);
    let mut by: Vec<(Key, Vec<(usize, f64)>)> = Vec::new();
    for (i, r) in reports.iter().enumerate() {
        for c in &r.checks {
            let (Some(rate), Some(unit)) = (c.rate, c.unit) else {
                continue;
            };
            if c.status != "pass" || !rate.is_finite() {
                continue;
            }
            let key = (
                format!("{} {}", c.group, c.name),
                model(c.device),
                unit.to_string(),
            );
            match by.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push((i, rate)),
                None => by.push((key, vec![(i, rate)])),
            }
        }
    }
    let mut outliers = Vec::new();
    for ((check, device, unit), values) in &by {
        if values.len() < 2 {
            continue;
        }
        let mut rates: Vec<f64> = values.iter().map(|(_, r)| *r).collect();
        let med = median(&mut rates);
        for (i, rate) in values {
            if med > 0.0 && *rate < slow_fraction * med {
                outliers.push(Outlier {
                    node: reports[*i].node.clone(),
                    check: check.clone(),
                    device: device.clone(),
                    rate: *rate,
                    unit: unit.clone(),
                    median: med,
                    fraction: rate / med,
                });
            }
        }
    }
    Merged {
        slow_fraction,
        nodes,
        outliers,
    }
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
            "{:w$}  {:18} {:7} {:>4} {:>4} {:>4}  failing\n",
            "node", "target", "backend", "pass", "fail", "skip"
        );
        for n in &self.nodes {
            let _ = writeln!(
                s,
                "{:w$}  {:18} {:7} {:>4} {:>4} {:>4}  {}",
                n.node,
                n.target,
                n.backend,
                n.pass,
                n.fail,
                n.skip,
                n.failing.join(", ")
            );
        }
        if self.outliers.is_empty() {
            let _ = writeln!(
                s,
                "\nno outliers: every rate is at least {:.2} of the fleet median for its device",
                self.slow_fraction
            );
        } else {
            let _ = writeln!(
                s,
                "\noutliers (below {:.2} of the fleet median for the same device):",
                self.slow_fraction
            );
            for o in &self.outliers {
                let _ = writeln!(
                    s,
                    "  {}: {} [{}] {:.1} {} = {:.2} of the median {:.1}",
                    o.node, o.check, o.device, o.rate, o.unit, o.fraction, o.median
                );
            }
        }
        s
    }

    pub fn failed_nodes(&self) -> usize {
        self.nodes.iter().filter(|n| n.fail > 0).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node<'a>(name: &str, gemm: f64, copy_status: &'a str) -> NodeReport<'a> {
        NodeReport {
            node: name.into(),
            target: "linux-aarch64-cuda",
            backend: "cuda",
            checks: vec![
                Measured {
                    group: "cuda",
                    name: "cuBLAS SGEMM",
                    device: Some("#0 NVIDIA GH200 480GB"),
                    status: "pass",
                    rate: Some(gemm),
                    unit: Some("GFLOP/s"),
                },
                Measured {
                    group: "cuda",
                    name: "device copy",
                    device: Some("#0 NVIDIA GH200 480GB"),
                    status: copy_status,
                    rate: None,
                    unit: None,
                },
            ],
        }
    }

    #[test]
    fn a_slow_gpu_is_an_outlier_and_a_failure_is_named() {
        let reports = [
            node("node1", 51_000.0, "pass"),
            node("node2", 17_000.0, "pass"),
            node("node3", 50_000.0, "fail"),
        ];
        let m = merge(&reports, 0.8);
        assert_eq!(m.outliers.len(), 1);
        assert_eq!(m.outliers[0].node, "node2");
        assert_eq!(m.outliers[0].device, "NVIDIA GH200 480GB");
        assert!((m.outliers[0].fraction - 0.34).abs() < 0.01);
        assert_eq!(m.nodes[2].failing, ["cuda device copy"]);
        assert_eq!(m.failed_nodes(), 1);
        let text = m.render();
        assert!(text.contains("node2: cuda cuBLAS SGEMM [NVIDIA GH200 480GB] 17000.0 GFLOP/s = 0.34 of the median 50000.0"), "{text}");
        // Two nodes: the slower one at a third of the other is still found.
        let m = merge(&reports[..2], 0.8);
        assert_eq!(m.outliers.len(), 1);
        // Different models are not compared.
        assert_eq!(
            model(Some("#3 NVIDIA H100 80GB HBM3")),
            "NVIDIA H100 80GB HBM3"
        );
    }
}
