//! `cargo xtask port`: rewrite pyproject.toml so the app locks and installs on every
//! target of the policy.

use anyhow::Result;
use serde::Serialize;

use crate::ctx::{Ctx, OutputArgs};
use crate::error;
use crate::fsx;
use crate::pins;
use crate::pyproject::{self, Change};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Without --check or --diff, pyproject.toml is rewritten atomically (only the keys that differ from the policy change; comments and layout stay). Afterwards run `cargo xtask lock`. Other files of the repository that still pin another Python (.python-version, CI workflows, Dockerfiles, pre-commit) are listed, not changed.\n\nExamples:\n  cargo xtask port --diff\n  cargo xtask port && cargo xtask lock\n  cargo xtask port --check   # in CI: exit 1 on drift"
)]
pub struct Port {
    /// Write nothing; exit 1 listing what would change (for CI)
    #[arg(long, conflicts_with = "diff")]
    check: bool,
    /// Print a unified diff of what would change; write nothing
    #[arg(long)]
    diff: bool,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Serialize)]
struct Report<'a> {
    file: &'a str,
    mode: &'a str,
    changed: bool,
    written: bool,
    changes: &'a [Change],
    /// Other files that pin another Python than the policy's (reported, not changed).
    other_python_pins: &'a [pins::Pin],
}

impl Port {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        self.out.preflight(ctx)?;
        let project = ctx.project()?;
        let path = project.join("pyproject.toml");
        let policy = ctx.policy()?;
        let old = std::fs::read_to_string(&path)
            .map_err(|e| error::usage(format!("{path}: cannot read: {e} (pass --project DIR)")))?;
        let (new, changes) = pyproject::port(path.as_str(), &old, policy)?;
        let mode = if self.check {
            "check"
        } else if self.diff {
            "diff"
        } else {
            "write"
        };
        let changed = new != old;
        let mut written = false;
        if mode == "write" && changed {
            fsx::check_writable(&path).map_err(|e| {
                error::usage(format!(
                    "{path}: cannot write: {e:#} (make it writable, or use --check / --diff)"
                ))
            })?;
            fsx::write_atomic(&path, new.as_bytes())
                .map_err(|e| error::usage(format!("{path}: {e:#}")))?;
            written = true;
        }
        let stale_pins = pins::stale_python(project, &policy.python.version);
        let report = Report {
            file: path.as_str(),
            mode,
            changed,
            written,
            changes: &changes,
            other_python_pins: &stale_pins,
        };
        if !stale_pins.is_empty() && !self.out.json {
            eprintln!(
                "note: {} line(s) in other files still pin another Python than the policy's {} (change them with the move):",
                stale_pins.len(),
                policy.python.version
            );
            for p in &stale_pins {
                eprintln!("  {}:{}: {} ({})", p.file, p.line, p.text, p.python);
            }
        }
        self.out.emit(&report, || {
            if mode == "diff" {
                return unified_diff(&old, &new);
            }
            render(&report)
        })?;
        if mode == "check" && changed {
            return Err(error::failed(format!(
                "{path} differs from the policy in {} place(s); run `cargo xtask port`",
                changes.len()
            )));
        }
        Ok(())
    }
}

fn render(r: &Report) -> String {
    let mut out = String::new();
    if !r.changed {
        out.push_str(&format!("{}: already ported, nothing to change\n", r.file));
        return out;
    }
    let verb = if r.written { "changed" } else { "would change" };
    out.push_str(&format!("{}: {verb}:\n", r.file));
    for c in r.changes {
        out.push_str(&format!(
            "  {}: {}\n      why: {}\n",
            c.location, c.change, c.reason
        ));
    }
    if r.written {
        out.push_str("next: run `cargo xtask lock` (uv.lock no longer matches pyproject.toml)\n");
    }
    out
}

pub fn unified_diff(old: &str, new: &str) -> String {
    crate::diff::unified(old, new, "a/pyproject.toml", "b/pyproject.toml", 3)
}
