//! `cargo xtask audit`: will this lock install on every target, and what needs a
//! compiler? Answered offline from uv.lock, for all targets at once.

use std::fmt::Write as _;

use anyhow::Result;
use serde::Serialize;

use crate::ctx::{Ctx, OutputArgs};
use crate::error;
use crate::imports;
use crate::lock::audit::{Auditor, FloorNeeded, PackageResult, Status, floor_needed};
use crate::lock::{self, Selection, tags};
use crate::torch;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Exit 1 when a package has no installable file on a target (listed), or when the project's \
own code imports, unguarded at module level, a package a target leaves out (the app dies with \
ModuleNotFoundError there; accept one with --allow-import PKG:PATH or [tool.xtask] allow-imports). \
Statuses: wheel (the best matching wheel), build (sdist only: needs a compiler), missing (neither), \
excluded (markers leave it out on that target). The import check parses the project's packages, \
top-level modules and tests/ with Python's own ast (the .venv's interpreter, else any Python 3 here); \
imports inside functions are listed as breaking when called, guarded ones (try/except ImportError, \
if TYPE_CHECKING) are not listed."
)]
#[derive(Default)]
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
    /// Accept imports of PKG in PATH (a file, or a folder and what is under it) that the
    /// app never loads where PKG is left out; repeatable
    #[arg(long = "allow-import", value_name = "PKG:PATH")]
    allow_imports: Vec<String>,
    /// Skip the import check (the lock alone)
    #[arg(long)]
    no_imports: bool,
    /// A GPU you run on, by name (H100, GH200, GB10, Thor, RTX 5090, ...) or compute
    /// capability (sm_90): is the torch each target installs built with kernels for it? Repeatable
    #[arg(long = "gpu", value_name = "NAME|sm_XY")]
    gpus: Vec<String>,
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
    /// uv's refusal when the lock's supported environments leave the target out (then
    /// nothing installs and `packages` is empty).
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
    /// The OS floor the chosen wheels need, beside the policy's.
    floor: Option<FloorNeeded>,
    /// What the torch it installs runs on (null where it installs no torch).
    torch: Option<torch::Judged>,
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
    /// The import check (absent with --no-imports).
    #[serde(skip_serializing_if = "Option::is_none")]
    imports: Option<ImportReport>,
}

/// The project's imports of packages some target leaves out.
#[derive(Serialize)]
struct ImportReport {
    /// The interpreter whose `ast` parsed the code.
    python: String,
    code: Vec<String>,
    tests: Vec<String>,
    files: usize,
    /// Imports left out because a try/except ImportError or `if TYPE_CHECKING` guards them.
    guarded: usize,
    /// Where import names came from: the .venv's metadata when there is one.
    mapping: String,
    warnings: Vec<String>,
    findings: Vec<imports::Finding>,
}

impl Audit {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        self.out.preflight(ctx)?;
        let report = self.report(ctx)?;
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

    /// The audit itself: the lock per target, torch, and the import check; warnings on
    /// stderr as they are found.
    fn report(&self, ctx: &Ctx) -> Result<Report> {
        let project = ctx.project()?;
        let policy = ctx.policy()?;
        let targets = policy.select(&self.targets)?;
        let asked = self
            .gpus
            .iter()
            .map(|g| policy.ask_gpu(g))
            .collect::<Result<Vec<_>>>()?;
        let proj = lock::Project::load(project)?;
        let python = self.python(&proj)?;
        let python_str = format!("{}.{}", python.0, python.1);
        let warnings: Vec<String> = proj
            .stale()
            .into_iter()
            .map(|w| format!("uv.lock is stale: {w}; run `cargo xtask lock`"))
            .collect();
        for w in &warnings {
            errln!("warning: {w}");
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
            let refused = auditor.unsupported(t, python)?;
            let (packages, floor) = match refused {
                Some(_) => (Vec::new(), None),
                None => {
                    let packages = auditor.target(t, python, &sel)?;
                    let floor = floor_needed(&packages, t);
                    (packages, floor)
                }
            };
            results.push(TargetResult {
                name: t.name.clone(),
                python: python_str.clone(),
                torch: torch_of(policy, t, &packages, &asked),
                floor,
                refused,
                packages,
            });
        }
        let imports = if self.no_imports {
            None
        } else {
            Some(self.imports(ctx, project, policy, &proj, &results)?)
        };
        if let Some(i) = &imports {
            for w in &i.warnings {
                errln!("warning: {w}");
            }
        }
        Ok(Report {
            lock: proj.lock_path.to_string(),
            lock_info: lock_info(&proj.lock),
            warnings,
            targets: results,
            imports,
        })
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

    /// Parse the project's code and find the imports each target's left-out packages break.
    fn imports(
        &self,
        ctx: &Ctx,
        project: &camino::Utf8Path,
        policy: &crate::policy::Policy,
        proj: &lock::Project,
        results: &[TargetResult],
    ) -> Result<ImportReport> {
        let mut allow = Vec::new();
        for a in &self.allow_imports {
            allow.push(imports::Allow::parse(a, "--allow-import")?);
        }
        for a in &proj.reqs.allow_imports {
            allow.push(imports::Allow::parse(
                a,
                &format!("{project}/pyproject.toml: [tool.xtask] allow-imports"),
            )?);
        }
        let sources = imports::Sources::find(project);
        let script = ctx.workspace.join("templates/audit/imports.py");
        let scan = imports::scan(project, &sources, &script)?;
        let names = imports::Names::load(project);
        let (left_out, installed) = per_target(results);
        let findings = imports::findings(
            &scan, &sources, &left_out, &installed, &names, policy, &allow,
        );
        let mapping = if project.join(".venv").is_dir() {
            "the .venv's installed metadata (top_level.txt, RECORD), then the policy's [imports] table, then distribution names"
        } else {
            "no .venv: the policy's [imports] table, then distribution names as the lock's wheels spell them"
        };
        Ok(ImportReport {
            python: scan.python,
            code: sources.code,
            tests: sources.tests,
            files: scan.files,
            guarded: scan.guarded,
            mapping: mapping.into(),
            warnings: scan.warnings,
            findings,
        })
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

/// What an image installs: `uv sync --frozen --no-dev` and the extras and groups its
/// build adds (the Dockerfile's UV_EXTRA_ARGS).
#[derive(Debug, Default, Clone)]
pub struct ImageSelection {
    pub extras: Vec<String>,
    pub all_extras: bool,
    pub groups: Vec<String>,
}

/// `docker build`'s preflight: the audit of the image's target and selection.
pub struct ImageAudit {
    /// The audit's text, as `audit --target T` prints it.
    pub text: String,
    /// What refuses the image, if anything: the audit's verdict, less the tests' imports
    /// (the image never runs its tests).
    pub verdict: Result<()>,
}

/// Audit one target as its image installs it: the lock offline, torch, and the imports of
/// the app's code. Bad input (an unknown target or extra, an unreadable lock) is an error;
/// findings are the verdict.
pub fn for_image(
    ctx: &Ctx,
    target: &str,
    sel: &ImageSelection,
    allow_imports: &[String],
) -> Result<ImageAudit> {
    let audit = Audit {
        targets: vec![target.to_string()],
        no_dev: true,
        extras: sel.extras.clone(),
        all_extras: sel.all_extras,
        groups: sel.groups.clone(),
        allow_imports: allow_imports.to_vec(),
        ..Audit::default()
    };
    let mut report = audit.report(ctx)?;
    if let Some(i) = &mut report.imports {
        i.findings.retain(|f| !f.test);
    }
    Ok(ImageAudit {
        text: render(&report),
        verdict: verdict(&report),
    })
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

/// What the torch a target installs runs on, judged for the GPUs it promises and those
/// asked about.
pub fn torch_of(
    policy: &crate::policy::Policy,
    t: &crate::policy::Target,
    packages: &[PackageResult],
    asked: &[crate::gpu::Asked],
) -> Option<torch::Judged> {
    // A torch with nothing installable there is the missing-wheel finding, not this one.
    let installed: Vec<(&str, &str)> = packages
        .iter()
        .filter(|p| matches!(p.status, Status::Wheel | Status::Build))
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    let found = torch::from_lock(t, &installed)?;
    let gpus = torch::gpus_for(policy, t, asked);
    let cuda = t.accelerator.as_deref() == Some("cuda");
    Some(torch::judge(
        policy,
        &t.arch(),
        cuda,
        &found,
        &gpus,
        &installed,
    ))
}

/// Per target: the distributions it leaves out (excluded or missing, under no version
/// installed there), and those it installs.
type PerTarget = std::collections::BTreeMap<String, std::collections::BTreeSet<String>>;

fn per_target(results: &[TargetResult]) -> (PerTarget, PerTarget) {
    let (mut out, mut inst) = (PerTarget::new(), PerTarget::new());
    for t in results {
        let installs: std::collections::BTreeSet<String> = t
            .packages
            .iter()
            .filter(|p| matches!(p.status, Status::Wheel | Status::Build))
            .map(|p| p.name.clone())
            .collect();
        let left: std::collections::BTreeSet<String> = t
            .packages
            .iter()
            .filter(|p| matches!(p.status, Status::Excluded | Status::Missing))
            .map(|p| p.name.clone())
            .filter(|n| !installs.contains(n))
            .collect();
        out.insert(t.name.clone(), left);
        inst.insert(t.name.clone(), installs);
    }
    (out, inst)
}

/// Exit 1 when a package has nothing installable on a target, or an unguarded
/// module-level import of a left-out package breaks one.
fn verdict(report: &Report) -> Result<()> {
    // Per package: its targets and how many places break there.
    let mut breaking: Vec<(String, Vec<String>, usize)> = Vec::new();
    for f in report
        .imports
        .iter()
        .flat_map(|i| &i.findings)
        .filter(|f| f.breaks == imports::Breaks::Import && !f.allowed)
    {
        match breaking
            .iter_mut()
            .find(|(p, t, _)| *p == f.package && *t == f.targets)
        {
            Some(b) => b.2 += 1,
            None => breaking.push((f.package.clone(), f.targets.clone(), 1)),
        }
    }
    let breaking: Vec<String> = breaking
        .into_iter()
        .map(|(p, t, n)| {
            let places = if n == 1 {
                "1 place".into()
            } else {
                format!("{n} places")
            };
            format!("{p} on {} ({places})", t.join(", "))
        })
        .collect();
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
    let refused: Vec<&str> = report
        .targets
        .iter()
        .filter(|t| t.refused.is_some())
        .map(|t| t.name.as_str())
        .collect();
    if !refused.is_empty() {
        return Err(error::failed(format!(
            "uv.lock's supported environments leave out {} (uv refuses to install there); add the target to [tool.uv] environments and run `cargo xtask lock`",
            refused.join(", ")
        )));
    }
    let gpu: Vec<String> = report
        .targets
        .iter()
        .filter_map(|t| Some((t, t.torch.as_ref()?)))
        .filter(|(_, j)| !j.findings.is_empty())
        .map(|(t, j)| format!("{} ({})", t.name, torch_problem(j)))
        .collect();
    let mut problems = Vec::new();
    if !missing.is_empty() {
        problems.push(format!("no installable file for: {}", missing.join(", ")));
    }
    if !gpu.is_empty() {
        problems.push(format!(
            "torch cannot use the GPU on {} (listed above)",
            gpu.join(", ")
        ));
    }
    if !breaking.is_empty() {
        problems.push(format!(
            "unguarded imports of packages a target leaves out (listed above): {}; guard them, or accept one with --allow-import PKG:PATH",
            breaking.join(", ")
        ));
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(error::failed(problems.join("; "))),
    }
}

/// `CPU-only`, `no kernels for Thor`, `torchvision mismatch`: a target's torch problems, short.
fn torch_problem(j: &torch::Judged) -> String {
    let mut what = Vec::new();
    if j.build == "cpu" || j.build == "rocm" || j.build == "xpu" {
        what.push(format!("{} build", j.build));
    }
    let fails: Vec<&str> = j
        .gpus
        .detail
        .iter()
        .filter(|d| d.runs == Some(false) && j.sm.is_some())
        .map(|d| d.gpu.as_str())
        .collect();
    if !fails.is_empty() {
        what.push(format!("no kernels for {}", fails.join(", ")));
    }
    for c in j.companions.iter().filter(|c| !c.ok) {
        what.push(format!("{} does not match", c.name));
    }
    what.join(", ")
}

/// The torch line of a target and its findings, indented.
fn render_torch(s: &mut String, j: &torch::Judged) {
    let _ = writeln!(s, "  {}", j.line());
    for f in &j.findings {
        let _ = writeln!(s, "    ! {f}");
    }
}

fn render_imports(s: &mut String, i: &ImportReport) {
    let (code, tests): (Vec<&imports::Finding>, Vec<&imports::Finding>) =
        i.findings.iter().partition(|f| !f.test);
    let _ = writeln!(
        s,
        "imports: {} files parsed ({} guarded imports left out); {} in the code, {} in tests break where a package is left out",
        i.files,
        i.guarded,
        code.len(),
        tests.len()
    );
    for (label, list) in [("code", code), ("tests", tests)] {
        for f in list {
            let what = match f.breaks {
                imports::Breaks::Import if f.test => "fails collection",
                imports::Breaks::Import => "breaks at import",
                imports::Breaks::Call => "breaks when called",
            };
            let allowed = if f.allowed { " (allowed)" } else { "" };
            let _ = writeln!(
                s,
                "  {}:{}: {} [{label}]: {what} on {}{allowed}: {} is left out there ({})",
                f.file,
                f.line,
                f.statement,
                f.targets.join(", "),
                f.package,
                f.mapping.as_str()
            );
            if !f.allowed {
                let _ = writeln!(s, "    {}", imports::advice(f));
            }
        }
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
        if let Some(why) = &t.refused {
            let _ = writeln!(
                s,
                "{} (Python {}): WILL NOT INSTALL: {why}",
                t.name, t.python
            );
            continue;
        }
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
        if let Some(f) = &t.floor {
            let _ = writeln!(s, "  {}", floor_line(f));
        }
        if let Some(j) = &t.torch {
            render_torch(&mut s, j);
        }
    }
    if let Some(i) = &r.imports {
        render_imports(&mut s, i);
    }
    s
}

/// "wheels need glibc ≥ 2.28 (torch 2.8.0+cu128); the policy's floor: glibc 2.28".
fn floor_line(f: &FloorNeeded) -> String {
    let policy = f
        .policy
        .as_ref()
        .map_or("none".to_string(), |p| format!("{} {p}", f.of));
    match (&f.needed, &f.by) {
        (Some(n), Some(by)) => format!(
            "wheels need {} ≥ {n} ({by}); the policy's floor: {policy}",
            f.of
        ),
        _ => format!(
            "no chosen wheel needs a particular {} version; the policy's floor: {policy}",
            f.of
        ),
    }
}

fn render_markdown(r: &Report) -> String {
    let mut s = String::new();
    for t in &r.targets {
        if let Some(why) = &t.refused {
            let _ = writeln!(
                s,
                "### `{}` (Python {})\n\nWill not install: {why}.\n",
                t.name, t.python
            );
            continue;
        }
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
        if let Some(f) = &t.floor {
            let line = floor_line(f);
            let _ = writeln!(s, "{}{}.\n", line[..1].to_uppercase(), &line[1..]);
        }
        if let Some(j) = &t.torch {
            let _ = writeln!(s, "Runs on: {}.\n", j.line());
            for f in &j.findings {
                let _ = writeln!(s, "- **{f}**");
            }
            if !j.findings.is_empty() {
                s.push('\n');
            }
        }
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
