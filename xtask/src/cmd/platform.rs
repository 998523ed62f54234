//! `cargo xtask platform`: what this machine is, for humans and for scripts.

use std::fmt::Write as _;

use anyhow::Result;

use crate::ctx::{Ctx, OutputArgs};
use crate::platform::{self, BuildKit, Platform as Report};

#[derive(clap::Args, Debug)]
pub struct Platform {
    #[command(flatten)]
    out: OutputArgs,
}

impl Platform {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        self.out.preflight(ctx)?;
        let policy = ctx.policy()?;
        let report = platform::probe::detect(policy);
        for w in &report.warnings {
            errln!("warning: {w}");
        }
        if let Some(e) = &report.emulation {
            errln!("warning: emulated: {}; {}", e.evidence, e.advice);
        }
        self.out.emit(&report, || render(&report))
    }
}

const MISSING: &str = "not found";

/// The compact table.
pub fn render(p: &Report) -> String {
    let mut rows = Rows::default();
    machine_rows(p, &mut rows);
    gpu_rows(p, &mut rows);
    tool_rows(&p.tools, &mut rows);
    binary_rows(p, &mut rows);
    rows.render()
}

/// Key-value rows; a key repeated on consecutive rows (several GPUs) is shown once.
#[derive(Default)]
struct Rows(Vec<(&'static str, String)>);

impl Rows {
    fn add(&mut self, key: &'static str, value: String) {
        self.0.push((key, value));
    }

    fn render(&self) -> String {
        let width = self.0.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        let mut out = String::new();
        let mut last = "";
        for (k, v) in &self.0 {
            let key = if *k == last { "" } else { k };
            let _ = writeln!(out, "{key:width$}  {v}");
            last = k;
        }
        out
    }
}

fn machine_rows(p: &Report, rows: &mut Rows) {
    rows.add(
        "os",
        match &p.os_version {
            Some(v) => format!("{} ({v})", p.os),
            None => p.os.to_string(),
        },
    );
    rows.add(
        "arch",
        if p.arch.as_str() == p.arch_raw {
            p.arch.to_string()
        } else {
            format!("{} (raw {})", p.arch, p.arch_raw)
        },
    );
    if let Some(e) = &p.emulation {
        rows.add("emulated", format!("{} ({})", e.evidence, e.advice));
    }
    rows.add("target", p.target.to_string());
    rows.add(
        "backend",
        format!("{} ({})", p.backend.as_str(), p.backend_evidence.join("; ")),
    );
}

fn binary_rows(p: &Report, rows: &mut Rows) {
    let mut d = format!("built for {}", p.binary.target);
    if let Some(b) = &p.binary.bundle {
        let _ = write!(d, ", bundle {b}");
    }
    rows.add("xtask", d);
}

fn gpu_rows(p: &Report, rows: &mut Rows) {
    if p.gpus.is_empty() {
        rows.add("gpus", "none".into());
    }
    for g in &p.gpus {
        let mut d = format!("#{} {}", g.index, g.name);
        if let Some(m) = g.memory_mib {
            let _ = write!(d, ", {:.0} GiB", m as f64 / 1024.0);
        }
        if let Some(cc) = &g.compute_capability {
            let _ = write!(d, ", sm {cc}");
            if let Some(f) = &g.family {
                let _ = write!(d, " ({f})");
            }
        }
        if let Some(c) = g.cores {
            let _ = write!(d, ", {c} cores");
        }
        if let Some(m) = &g.metal {
            let _ = write!(d, ", {m}");
        }
        rows.add("gpu", d);
    }
    if let Some(c) = &p.cuda {
        let mut d = if c.libcuda_loadable {
            "libcuda loads".to_string()
        } else {
            "libcuda not loadable".to_string()
        };
        if let Some(v) = &c.driver_version {
            let _ = write!(d, ", driver {v}");
        }
        if let Some(v) = &c.driver_cuda_version {
            let _ = write!(d, ", CUDA {v}");
        }
        rows.add("cuda", d);
    }
    if let Some(m) = p.apple.as_ref().and_then(|a| a.memory_bytes) {
        let gib = m as f64 / (1u64 << 30) as f64;
        rows.add("memory", format!("{gib:.0} GiB unified"));
    }
}

fn tool_rows(t: &platform::Tools, rows: &mut Rows) {
    rows.add("uv", tool_line(t.uv.as_ref()));
    if t.pythons.is_empty() {
        rows.add("python", MISSING.into());
    }
    for py in &t.pythons {
        rows.add(
            "python",
            format!("{} {} ({})", py.version, py.path, py.source),
        );
    }
    if t.docker.clients.is_empty() {
        rows.add("docker", MISSING.into());
    }
    for c in &t.docker.clients {
        let buildx = c
            .buildx
            .as_deref()
            .map_or("no buildx".into(), |v| format!("buildx {v}"));
        let buildkit = match c.buildkit {
            BuildKit::Buildx => "BuildKit via buildx",
            BuildKit::Legacy => "BuildKit via DOCKER_BUILDKIT=1",
            BuildKit::None => "no BuildKit",
        };
        let version = c.version.as_deref().unwrap_or("?");
        rows.add(
            "docker",
            format!("{version} {} ({buildx}, {buildkit})", c.path),
        );
    }
    if !t.docker.clients.is_empty() {
        let daemon = match (&t.docker.daemon, &t.docker.daemon_error) {
            (Some(v), _) => format!("answers (server {v})"),
            (None, Some(e)) => format!("not answering: {e}"),
            (None, None) => "not answering".into(),
        };
        rows.add("daemon", daemon);
    }
    rows.add("nvidia-smi", tool_line(t.nvidia_smi.as_ref()));
    rows.add("nvcc", tool_line(t.nvcc.as_ref()));
}

fn tool_line(t: Option<&platform::Tool>) -> String {
    match t {
        Some(t) => format!("{} {}", t.version.as_deref().unwrap_or("?"), t.path),
        None => MISSING.into(),
    }
}
