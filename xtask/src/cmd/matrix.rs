//! `cargo xtask matrix`: the support matrix from the policy, as a table or Markdown.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::ctx::{Ctx, OutputArgs};
use crate::policy::{Policy, Target};

#[derive(clap::Args, Debug)]
pub struct Matrix {
    /// Print Markdown tables (README's platform section is generated from this)
    #[arg(long, conflicts_with = "json")]
    markdown: bool,
    #[command(flatten)]
    out: OutputArgs,
}

/// A target as the policy writes it, with where its torch comes from.
#[derive(Serialize)]
struct TargetRow<'p> {
    #[serde(flatten)]
    target: &'p Target,
    torch: Vec<TorchRow>,
}

/// One torch source of a target: for torch `versions` (all when None), `index` at `url`;
/// index None is the default index (PyPI).
#[derive(Serialize)]
struct TorchRow {
    versions: Option<String>,
    index: Option<String>,
    url: Option<String>,
}

/// Where a target's torch comes from, by torch version; the default index when no
/// entry names the target.
fn torch_rows(p: &Policy, t: &Target) -> Vec<TorchRow> {
    let mut rows: Vec<TorchRow> = p
        .torch
        .sources
        .iter()
        .filter(|s| s.targets.contains(&t.name))
        .map(|s| TorchRow {
            versions: s.versions.clone(),
            index: Some(s.index.clone()),
            url: Some(p.indexes[&s.index].url.clone()),
        })
        .collect();
    if rows.is_empty() {
        rows.push(TorchRow {
            versions: None,
            index: None,
            url: None,
        });
    }
    rows
}

fn torch_cell(p: &Policy, t: &Target, markdown: bool) -> String {
    torch_rows(p, t)
        .iter()
        .map(|r| {
            let place = match (&r.index, &r.url) {
                (Some(i), Some(u)) if markdown => format!("`{i}` ({u})"),
                (Some(i), _) => i.clone(),
                _ => "PyPI".to_string(),
            };
            match &r.versions {
                Some(v) if markdown => format!("torch `{v}`: {place}"),
                Some(v) => format!("{v}: {place}"),
                None => place,
            }
        })
        .collect::<Vec<_>>()
        .join(if markdown { "; " } else { ", " })
}

#[derive(Serialize)]
struct PackageRow {
    name: String,
    versions: Option<String>,
    targets: Vec<String>,
    never_list: bool,
    reason: String,
}

#[derive(Serialize)]
struct MatrixJson<'p> {
    python: String,
    targets: Vec<TargetRow<'p>>,
    packages: Vec<PackageRow>,
}

impl Matrix {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        self.out.preflight(ctx)?;
        let policy = ctx.policy()?;
        let json = to_json(policy);
        let markdown = self.markdown;
        self.out.emit(&json, || {
            if markdown {
                markdown_tables(policy)
            } else {
                text(policy)
            }
        })
    }
}

fn to_json(p: &Policy) -> MatrixJson<'_> {
    MatrixJson {
        python: p.python.requires_python.clone(),
        targets: p
            .targets
            .iter()
            .map(|t| TargetRow {
                target: t,
                torch: torch_rows(p, t),
            })
            .collect(),
        packages: p
            .rules
            .iter()
            .map(|r| PackageRow {
                name: r.name.clone(),
                versions: r.versions.as_ref().map(ToString::to_string),
                targets: r.targets.clone(),
                never_list: r.never_list,
                reason: r.reason.clone(),
            })
            .collect(),
    }
}

fn floor(t: &crate::policy::Target) -> String {
    match (&t.glibc, &t.macos) {
        (Some(g), _) => format!("glibc {g}"),
        (None, Some(m)) => format!("macOS {m}"),
        _ => "-".into(),
    }
}

fn rule_label(r: &crate::policy::Rule) -> String {
    let name = match r.patterns.as_slice() {
        [a, b, _, rest @ ..] => format!("{a}, {b}, ... ({} names)", rest.len() + 3),
        _ => r.name.clone(),
    };
    match &r.versions {
        Some(v) => format!("{name} {v}"),
        None => name,
    }
}

fn cell(r: &crate::policy::Rule, target: &str) -> &'static str {
    if r.never_list {
        "never listed"
    } else if r.targets.iter().any(|t| t == target) {
        "yes"
    } else {
        "no"
    }
}

/// Markdown: targets, then packages × targets with reasons.
pub fn markdown_tables(p: &Policy) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "Python `{}` on every target.\n",
        p.python.requires_python
    );
    s.push_str(
        "| target | machines | docker | torch index | wheel floor |\n|---|---|---|---|---|\n",
    );
    for t in &p.targets {
        let docker = match (&t.docker_alias, &t.docker_platform) {
            (Some(a), Some(pl)) => format!("`{a}` ({pl})"),
            _ => "-".into(),
        };
        let _ = writeln!(
            s,
            "| `{}` | {} | {docker} | {} | {} |",
            t.name,
            t.about,
            torch_cell(p, t, true),
            floor(t)
        );
    }
    s.push_str("\n| package |");
    for t in &p.targets {
        let _ = write!(s, " `{}` |", t.name);
    }
    s.push_str(" why |\n|---|");
    for _ in &p.targets {
        s.push_str("---|");
    }
    s.push_str("---|\n");
    for r in &p.rules {
        let _ = write!(s, "| {} |", rule_label(r));
        for t in &p.targets {
            let _ = write!(s, " {} |", cell(r, &t.name));
        }
        let _ = writeln!(s, " {} |", r.reason);
    }
    s
}

fn text(p: &Policy) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "python {}", p.python.requires_python);
    for t in &p.targets {
        let _ = writeln!(
            s,
            "{:20} {:11} {:12} {:11} torch from {}",
            t.name,
            t.docker_alias.as_deref().unwrap_or("-"),
            t.docker_platform.as_deref().unwrap_or("-"),
            floor(t),
            torch_cell(p, t, false)
        );
    }
    s.push('\n');
    let w = p
        .rules
        .iter()
        .map(|r| rule_label(r).len())
        .max()
        .unwrap_or(0);
    let _ = write!(s, "{:w$}", "package");
    for t in &p.targets {
        let _ = write!(s, "  {:18}", t.name);
    }
    s.push('\n');
    for r in &p.rules {
        let _ = write!(s, "{:w$}", rule_label(r));
        for t in &p.targets {
            let _ = write!(s, "  {:18}", cell(r, &t.name));
        }
        s.push('\n');
    }
    s.lines().map(|l| format!("{}\n", l.trim_end())).collect()
}
