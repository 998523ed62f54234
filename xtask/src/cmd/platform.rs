//! `cargo xtask platform`: what this machine is, for humans and for scripts.

use std::fmt::Write as _;

use anyhow::Result;

use crate::ctx::{Ctx, OutputArgs};
use crate::platform::{self, Platform as Report};

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
            eprintln!("warning: {w}");
        }
        self.out.emit(&report, || render(&report))
    }
}

const MISSING: &str = "not found";

/// The compact table.
pub fn render(p: &Report) -> String {
    let mut rows: Vec<(String, String)> = Vec::new();
    let mut row = |k: &str, v: String| rows.push((k.to_string(), v));
    row(
        "os",
        match &p.os_version {
            Some(v) => format!("{} ({v})", p.os),
            None => p.os.to_string(),
        },
    );
    row(
        "arch",
        if p.arch.as_str() == p.arch_raw {
            p.arch.to_string()
        } else {
            format!("{} (raw {})", p.arch, p.arch_raw)
        },
    );
    row("target", p.target.clone());
    row(
        "backend",
        format!("{} ({})", p.backend.as_str(), p.backend_evidence.join("; ")),
    );
    if p.gpus.is_empty() {
        row("gpus", "none".into());
    }
    for g in &p.gpus {
        let mut d = format!("#{} {}", g.index, g.name);
        if let Some(m) = g.memory_mib {
            let _ = write!(d, ", {:.0} GiB", m as f64 / 1024.0);
        }
        if let Some(cc) = &g.compute_capability {
            let _ = write!(d, ", sm {cc}");
        }
        if let Some(c) = g.cores {
            let _ = write!(d, ", {c} cores");
        }
        if let Some(m) = &g.metal {
            let _ = write!(d, ", {m}");
        }
        row("gpu", d);
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
        row("cuda", d);
    }
    if let Some(a) = &p.apple
        && let Some(m) = a.memory_bytes
    {
        row(
            "memory",
            format!("{:.0} GiB unified", m as f64 / (1u64 << 30) as f64),
        );
    }
    let t = &p.tools;
    row("uv", tool_line(t.uv.as_ref()));
    if t.pythons.is_empty() {
        row("python", MISSING.into());
    }
    for py in &t.pythons {
        row(
            "python",
            format!("{} {} ({})", py.version, py.path, py.source),
        );
    }
    if t.docker.clients.is_empty() {
        row("docker", MISSING.into());
    }
    for c in &t.docker.clients {
        let buildx = c
            .buildx
            .as_deref()
            .map_or("no buildx".into(), |v| format!("buildx {v}"));
        let buildkit = match c.buildkit {
            "buildx" => "BuildKit via buildx",
            "legacy" => "BuildKit via DOCKER_BUILDKIT=1",
            _ => "no BuildKit",
        };
        row(
            "docker",
            format!(
                "{} {} ({buildx}, {buildkit})",
                c.version.as_deref().unwrap_or("?"),
                c.path
            ),
        );
    }
    if !t.docker.clients.is_empty() {
        row(
            "daemon",
            match (&t.docker.daemon, &t.docker.daemon_error) {
                (Some(v), _) => format!("answers (server {v})"),
                (None, Some(e)) => format!("not answering: {e}"),
                (None, None) => "not answering".into(),
            },
        );
    }
    row("nvidia-smi", tool_line(t.nvidia_smi.as_ref()));
    row("nvcc", tool_line(t.nvcc.as_ref()));
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    let mut out = String::new();
    let mut last = "";
    for (k, v) in &rows {
        // Repeated keys (several GPUs or interpreters) are shown once.
        let key = if k == last { "" } else { k.as_str() };
        let _ = writeln!(out, "{key:width$}  {v}");
        last = k;
    }
    out
}

fn tool_line(t: Option<&platform::Tool>) -> String {
    match t {
        Some(t) => format!("{} {}", t.version.as_deref().unwrap_or("?"), t.path),
        None => MISSING.into(),
    }
}
