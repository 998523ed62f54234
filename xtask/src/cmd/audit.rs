//! `cargo xtask audit`: will this lock install on every target, and what needs a
//! compiler? Answered offline from uv.lock, for all targets at once.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::ctx::{Ctx, OutputArgs};
use crate::error;
use crate::lock::audit::{Auditor, PackageResult, Status};
use crate::lock::{self, Selection, tags};

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit 1 when a package has no installable file on a target (listed), 0 otherwise. Statuses: wheel (the best matching wheel), build (sdist only: needs a compiler), missing (neither), excluded (markers leave it out on that target)."
)]
pub struct Audit {
    /// Audit only this target (canonical name or Docker alias); repeatable [default: all]
    #[arg(long = "target", value_name = "NAME")]
    targets: Vec<String>,
    /// Python version X.Y, or an interpreter's X.Y.Z for python_full_version markers [default: the lowest that requires-python allows]
    #[arg(long, value_name = "X.Y")]
    python: Option<String>,
    /// Include a dependency group, as `uv sync --group`; repeatable
    #[arg(long = "group", value_name = "GROUP")]
    groups: Vec<String>,
    /// Include every dependency group (as uv sync --all-groups)
    #[arg(long)]
    all_groups: bool,
    /// Leave out a dependency group, even a default one or with --all-groups; repeatable
    #[arg(long = "no-group", value_name = "GROUP")]
    no_groups: Vec<String>,
    /// Only these dependency groups: not the project, its extras or default groups; repeatable
    #[arg(long = "only-group", value_name = "GROUP")]
    only_groups: Vec<String>,
    /// Leave out the dev group (other default groups stay: see --no-default-groups)
    #[arg(long)]
    no_dev: bool,
    /// Only the dev group (as --only-group dev)
    #[arg(long)]
    only_dev: bool,
    /// Leave out the default groups ([tool.uv] default-groups, else dev)
    #[arg(long)]
    no_default_groups: bool,
    /// Include an optional extra, as `uv sync --extra`; repeatable
    #[arg(long = "extra", value_name = "EXTRA")]
    extras: Vec<String>,
    /// Include every extra
    #[arg(long)]
    all_extras: bool,
    /// Leave out an extra that --all-extras would include; repeatable
    #[arg(long = "no-extra", value_name = "EXTRA")]
    no_extras: Vec<String>,
    /// Print Markdown (for docs)
    #[arg(long, conflicts_with = "json")]
    markdown: bool,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Serialize)]
struct TargetResult {
    name: String,
    python: String,
    packages: Vec<PackageResult>,
}

#[derive(Serialize)]
struct LockInfo {
    version: u32,
    revision: Option<u32>,
    requires_python: Option<String>,
    resolution_markers: Vec<String>,
    supported_markers: Vec<String>,
    required_markers: Vec<String>,
    workspace_members: Vec<String>,
}

#[derive(Serialize)]
struct Report {
    lock: String,
    lock_info: LockInfo,
    warnings: Vec<String>,
    targets: Vec<TargetResult>,
}

impl Audit {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        self.out.preflight(ctx)?;
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let targets = policy.select(&self.targets)?;
        let proj = lock::Project::load(project)?;
        let python = self.python(&proj)?;
        let python_str = format!("{}.{}", python.0, python.1);
        let warnings: Vec<String> = proj
            .stale()
            .into_iter()
            .map(|w| format!("uv.lock is stale: {w}; run `cargo xtask lock`"))
            .collect();
        for w in &warnings {
            eprintln!("warning: {w}");
        }
        let sel = self.selection(&proj);
        // Refused selections (an unknown group, two sides of a declared conflict) stop
        // here, once, as `uv sync` stops.
        proj.choose(&sel)?;
        // Wheel names are the same for every target: parse them once.
        let full = self.python.clone().filter(|p| p.split('.').count() == 3);
        let auditor = Auditor::new(&proj, policy).full_python(full);
        let mut results = Vec::new();
        for t in &targets {
            results.push(TargetResult {
                name: t.name.clone(),
                python: python_str.clone(),
                packages: auditor.target(t, python, &sel)?,
            });
        }
        let report = Report {
            lock: proj.lock_path.to_string(),
            lock_info: lock_info(&proj.lock),
            warnings,
            targets: results,
        };
        let markdown = self.markdown;
        self.out.emit(&report, || {
            if markdown {
                render_markdown(&report)
            } else {
                render(&report)
            }
        })?;
        verdict(&report)
    }

    /// `--python X.Y[.Z]`, else the lowest Python the project accepts (what uv checks an
    /// interpreter against), else the lock's; refused when the project excludes it.
    fn python(&self, proj: &lock::Project) -> Result<(u32, u32)> {
        let reqs = &proj.reqs;
        let python = match &self.python {
            Some(p) => tags::parse_floor(p)
                .filter(|_| {
                    let parts: Vec<&str> = p.split('.').collect();
                    (2..=3).contains(&parts.len()) && parts.iter().all(|x| x.parse::<u32>().is_ok())
                })
                .ok_or_else(|| {
                    error::usage(format!(
                        "--python {p}: give a version as X.Y or X.Y.Z, e.g. 3.12"
                    ))
                })?,
            None => match reqs.requires_python.as_deref().and_then(lock::python_of) {
                Some(p) => p,
                None => proj.python().map_err(|e| {
                    error::usage(format!("{}; pass --python X.Y", error::line_of(&e)))
                })?,
            },
        };
        if let Some(requires) = reqs
            .requires_python
            .as_ref()
            .or(proj.lock.requires_python.as_ref())
            && !lock::python_allowed(requires, python)
        {
            let from = if reqs.requires_python.is_some() {
                "project.requires-python"
            } else {
                "uv.lock"
            };
            let v = format!("{}.{}", python.0, python.1);
            return Err(error::usage(format!(
                "--python {v}: Python {v} is incompatible with the project's Python requirement: `{requires}` (from `{from}`)"
            )));
        }
        Ok(python)
    }

    /// The extras and groups asked for, as uv's flags name them.
    fn selection(&self, proj: &lock::Project) -> Selection {
        Selection {
            extras: self.extras.clone(),
            all_extras: self.all_extras,
            no_extras: self.no_extras.clone(),
            groups: self.groups.clone(),
            all_groups: self.all_groups,
            no_groups: self.no_groups.clone(),
            only_groups: self.only_groups.clone(),
            no_dev: self.no_dev,
            only_dev: self.only_dev,
            no_default_groups: self.no_default_groups,
            default_groups: proj.reqs.default_groups.clone(),
        }
    }
}

fn lock_info(lock: &lock::Lock) -> LockInfo {
    LockInfo {
        version: lock.version,
        revision: lock.revision,
        requires_python: lock.requires_python.clone(),
        resolution_markers: lock.resolution_markers.clone(),
        supported_markers: lock.supported_markers.clone(),
        required_markers: lock.required_markers.clone(),
        workspace_members: lock
            .manifest
            .as_ref()
            .map(|m| m.members.clone())
            .unwrap_or_default(),
    }
}

/// Exit 1 when a package has nothing installable on a target.
fn verdict(report: &Report) -> Result<()> {
    let missing: Vec<String> = report
        .targets
        .iter()
        .flat_map(|t| {
            t.packages
                .iter()
                .filter(|p| p.status == Status::Missing)
                .map(move |p| format!("{} {} on {}", p.name, p.version, t.name))
        })
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(error::failed(format!(
            "no installable file for: {}",
            missing.join(", ")
        )))
    }
}

fn counts(t: &TargetResult) -> String {
    let n = |s: Status| t.packages.iter().filter(|p| p.status == s).count();
    format!(
        "{} wheel, {} build, {} missing, {} excluded",
        n(Status::Wheel),
        n(Status::Build),
        n(Status::Missing),
        n(Status::Excluded)
    )
}

fn render(r: &Report) -> String {
    let mut s = String::new();
    for t in &r.targets {
        let verdict = if t.packages.iter().any(|p| p.status == Status::Missing) {
            "WILL NOT INSTALL"
        } else {
            "installs"
        };
        let _ = writeln!(
            s,
            "{} (Python {}): {verdict}: {}",
            t.name,
            t.python,
            counts(t)
        );
        for p in t
            .packages
            .iter()
            .filter(|p| matches!(p.status, Status::Missing | Status::Build))
        {
            let _ = writeln!(
                s,
                "  {:8} {} {}: {}",
                p.status.as_str(),
                p.name,
                p.version,
                p.note.as_deref().unwrap_or_default()
            );
        }
    }
    s
}

fn render_markdown(r: &Report) -> String {
    let mut s = String::new();
    for t in &r.targets {
        let _ = writeln!(
            s,
            "### `{}` (Python {})\n\n{}\n",
            t.name,
            t.python,
            counts(t)
        );
        let problems: Vec<&PackageResult> = t
            .packages
            .iter()
            .filter(|p| matches!(p.status, Status::Missing | Status::Build))
            .collect();
        if problems.is_empty() {
            s.push_str("Every package installs from a wheel.\n\n");
            continue;
        }
        s.push_str("| package | version | status | note |\n|---|---|---|---|\n");
        for p in problems {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                p.name,
                p.version,
                p.status.as_str(),
                p.note.as_deref().unwrap_or_default()
            );
        }
        s.push('\n');
    }
    s
}
