//! `cargo xtask port`: rewrite pyproject.toml so the app locks and installs on every
//! target of the policy.

use anyhow::Result;
use serde::Serialize;

use crate::ctx::{Ctx, OutputArgs};
use crate::error;
use crate::fsx::{self, Mode};
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
    mode: Mode,
    changed: bool,
    written: bool,
    changes: &'a [Change],
    /// Other files that pin another Python than the policy's (reported, not changed).
    other_python_pins: &'a [pins::Pin],
    /// The project's imports of packages the policy's markers leave out somewhere.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    imports: Vec<crate::imports::Finding>,
    /// What each target's torch will run on, as far as the source and pin say before locking.
    torch: Vec<crate::torch::Predicted>,
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
        let mode = Mode::of(self.check, self.diff);
        let ensured = fsx::ensure_file(&path, "pyproject.toml", &old, &new, mode)?;
        let (changed, written) = (ensured.changed, ensured.written);
        let stale_pins = pins::stale_python(project, &policy.python.version);
        let imports = marked_imports(ctx, project, policy, &new);
        if !self.out.json {
            show_imports(&imports);
        }
        let torch = pyproject::parse(path.as_str(), &new)
            .map(|doc| crate::torch::predict(policy, &pyproject::requirements(&doc).dependencies))
            .unwrap_or_default();
        if !self.out.json && mode != Mode::Diff {
            show_torch(&torch);
        }
        let report = Report {
            file: path.as_str(),
            torch,
            mode,
            changed,
            written,
            changes: &changes,
            other_python_pins: &stale_pins,
            imports,
        };
        if !stale_pins.is_empty() && !self.out.json {
            errln!(
                "note: {} line(s) in other files still pin another Python than the policy's {} (change them with the move):",
                stale_pins.len(),
                policy.python.version
            );
            for p in &stale_pins {
                errln!("  {}:{}: {} ({})", p.file, p.line, p.text, p.python);
            }
        }
        self.out.emit(&report, || {
            if mode == Mode::Diff {
                return ensured.diff.clone();
            }
            render(&report)
        })?;
        if mode == Mode::Check && changed {
            return Err(error::failed(format!(
                "{path} differs from the policy in {} place(s); run `cargo xtask port`",
                changes.len()
            )));
        }
        Ok(())
    }
}

/// On stderr: the unguarded imports of packages the ported markers leave out.
fn show_imports(imports: &[crate::imports::Finding]) {
    if imports.is_empty() {
        return;
    }
    errln!(
        "note: the app imports, unguarded, packages these markers leave out (`cargo xtask audit` judges the lock):"
    );
    for f in imports {
        let when = match f.breaks {
            crate::imports::Breaks::Import => "at import",
            crate::imports::Breaks::Call => "when called",
        };
        errln!(
            "  {}:{}: {} breaks {when} on {}: {}",
            f.file,
            f.line,
            f.statement,
            f.targets.join(", "),
            crate::imports::advice(f)
        );
    }
}

/// On stderr: what each target's torch will run on, as ported.
fn show_torch(torch: &[crate::torch::Predicted]) {
    if torch.is_empty() {
        return;
    }
    errln!("torch, as ported (`cargo xtask audit` judges the lock):");
    for p in torch {
        match (&p.torch, &p.note) {
            (Some(j), _) => {
                errln!("  {}: {}", p.target, j.line());
                for f in &j.findings {
                    errln!("    ! {f}");
                }
            }
            (None, note) => errln!(
                "  {}: torch from {}: {}",
                p.target,
                p.index.as_deref().unwrap_or("the default index"),
                note.as_deref().unwrap_or_default()
            ),
        }
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

/// After the rewrite: the imports of every dependency a policy rule limits to some targets,
/// found in the project's code for the targets the rule leaves out (by the policy, before
/// any lock exists). Best effort: without a Python to parse with, nothing is said.
fn marked_imports(
    ctx: &Ctx,
    project: &camino::Utf8Path,
    policy: &crate::policy::Policy,
    ported: &str,
) -> Vec<crate::imports::Finding> {
    use std::collections::{BTreeMap, BTreeSet};
    let Ok(doc) = pyproject::parse("pyproject.toml", ported) else {
        return Vec::new();
    };
    let reqs = pyproject::requirements(&doc);
    let mut left_out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let all = reqs
        .dependencies
        .iter()
        .chain(reqs.optional.values().flatten())
        .chain(reqs.groups.values().flatten());
    for text in all {
        let Ok(req) = crate::pep::requirement(text) else {
            continue;
        };
        let Some(rule) = policy.rule_for(&req).filter(|r| !r.never_list) else {
            continue;
        };
        for t in policy
            .targets
            .iter()
            .filter(|t| !rule.targets.contains(&t.name))
        {
            left_out
                .entry(t.name.clone())
                .or_default()
                .insert(req.name.to_string());
        }
    }
    if left_out.is_empty() {
        return Vec::new();
    }
    let sources = crate::imports::Sources::find(project);
    let script = ctx.workspace.join("templates/audit/imports.py");
    let Ok(scan) = crate::imports::scan(project, &sources, &script) else {
        return Vec::new();
    };
    let names = crate::imports::Names::load(project);
    crate::imports::findings(
        &scan,
        &sources,
        &left_out,
        &BTreeMap::new(),
        &names,
        policy,
        &[],
    )
}
