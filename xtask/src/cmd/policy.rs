//! `cargo xtask policy check`: the policy's wheel facts held against the live indexes.
//! For every package rule with a `wheels` fact, and torch per `[[torch.sources]]` index
//! (and from the default index for targets no source names), the index's file list
//! (PEP 691 JSON or PEP 503 HTML) of the newest releases in the rule's `versions` is read,
//! every wheel's tags parsed, and each target judged at its floor and the policy's
//! Python. Where the index and the policy disagree, the difference is printed; exit 1.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use pep508_rs::pep440_rs::{Version, VersionSpecifiers};
use serde::Serialize;

use crate::ctx::{Ctx, OutputArgs};
use crate::error;
use crate::lock::tags::{self, Platform};
use crate::policy::{Policy, Target};
use crate::simple::{self, Unread};

mod torch_wheels;

/// PyPI's simple index. The host is written in two parts: no file of this repository
/// spells a package registry's host whole (locks in tests are made at run time).
fn pypi() -> String {
    format!("https://{}.{}/simple", "pypi", "org")
}

#[derive(clap::Args, Debug)]
pub struct PolicyCmd {
    #[command(subcommand)]
    action: Action,
}

#[derive(clap::Subcommand, Debug)]
enum Action {
    /// Hold the policy's wheel facts against the indexes (online; exit 1 on a difference)
    Check(Check),
}

#[derive(clap::Args, Debug)]
#[command(after_help = "\
What is checked: each [[packages]] rule with a `wheels` fact (the targets the default index has \
a wheel for, at each target's glibc or macOS floor and the policy's Python, in every release of \
the rule's `versions`); torch on each [[torch.sources]] index for its targets and versions; torch \
on the default index for the targets no source names. Pre-releases and yanked files do not count. \
An index that does not answer is reported with the reason and skipped (exit 3 when none \
answered). Needs curl.

--torch-wheels checks the GPU-code facts instead ([[torch.builds]]): for each fact of this \
machine's CPU architecture, the newest torch in its versions on the policy's index for its CUDA \
([indexes.X] cuda) is installed in a scratch environment with uv, and torch._C._cuda_getArchFlags() \
(no GPU needed) is held against the fact. Gigabytes per fact; facts for another architecture or \
a CUDA no index serves are listed as not checked, with the reason.

Examples:
  cargo xtask policy check
  cargo xtask policy check --last 10 --json
  cargo xtask policy check --torch-wheels --index pytorch-cu128=https://mirror.example/cu128
  cargo xtask policy check --index https://mirror.example/simple --index pytorch-cu128=https://mirror.example/cu128")]
pub struct Check {
    /// The default index (PyPI's simple API unless given), or NAME=URL for one of the
    /// policy's [indexes]; repeatable
    #[arg(long = "index", value_name = "[NAME=]URL")]
    indexes: Vec<String>,
    /// How many of the newest releases in each rule's versions to read
    #[arg(long, default_value_t = 5, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    last: u32,
    /// Check the GPU code of torch's builds ([[torch.builds]]) against the wheels themselves
    /// (installs torch per fact: gigabytes) instead of the wheel facts
    #[arg(long)]
    torch_wheels: bool,
    #[command(flatten)]
    out: OutputArgs,
}

impl PolicyCmd {
    pub fn run(self, ctx: &Ctx) -> Result<()> {
        match self.action {
            Action::Check(c) => c.run(ctx),
        }
    }
}

/// One claim of the policy: `package` in `versions` has wheels, on `index`, for exactly
/// (`exact`) or at least the targets `claimed`.
struct Claim {
    subject: String,
    package: String,
    versions: Option<VersionSpecifiers>,
    index: Option<String>,
    url: String,
    claimed: Vec<String>,
    /// A package rule's `wheels` names every target with a wheel; a torch source only
    /// says which targets it serves.
    exact: bool,
}

#[derive(Serialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "kebab-case")]
enum Verdict {
    Ok,
    Differs,
    Unreachable,
    /// Not checkable here (another CPU architecture, no index for the fact's CUDA).
    NotChecked,
}

#[derive(Serialize)]
struct ReleaseRow {
    version: String,
    /// Per target: the wheel that installs there, or None.
    wheels: BTreeMap<String, Option<String>>,
}

#[derive(Serialize)]
struct ClaimRow {
    subject: String,
    package: String,
    versions: Option<String>,
    index: Option<String>,
    url: String,
    claimed: Vec<String>,
    status: Verdict,
    format: Option<simple::Format>,
    releases: Vec<ReleaseRow>,
    differences: Vec<String>,
    reason: Option<String>,
}

#[derive(Serialize)]
struct Report {
    default_index: String,
    python: String,
    last: u32,
    checks: Vec<ClaimRow>,
    differences: usize,
    unreachable: usize,
}

impl Check {
    fn run(self, ctx: &Ctx) -> Result<()> {
        self.out.preflight(ctx)?;
        let policy = ctx.policy()?;
        let (default, named) = self.index_overrides(policy)?;
        if self.torch_wheels {
            return self.torch_wheels(ctx, policy, &named);
        }
        let claims = claims(policy, &default, &named);
        let python = tags::parse_floor(&policy.python.version).ok_or_else(|| {
            error::usage(format!(
                "policy: [python] version {:?} is not MAJOR.MINOR",
                policy.python.version
            ))
        })?;
        let mut pages: BTreeMap<String, std::result::Result<simple::Page, Unread>> =
            BTreeMap::new();
        let mut progress = crate::out::Progress::new();
        let mut rows = Vec::new();
        for c in &claims {
            let key = simple::project_url(&c.url, &c.package);
            if !pages.contains_key(&key) {
                progress.line(&format!("reading {key}"));
                pages.insert(key.clone(), simple::read(&c.url, &c.package)?);
            }
            rows.push(judge(c, &pages[&key], policy, python, self.last as usize));
        }
        let report = Report {
            default_index: default,
            python: policy.python.version.clone(),
            last: self.last,
            differences: rows.iter().map(|r| r.differences.len()).sum(),
            unreachable: rows
                .iter()
                .filter(|r| r.status == Verdict::Unreachable)
                .count(),
            checks: rows,
        };
        self.out.emit(&report, || text(&report))?;
        if report.differences > 0 {
            return Err(error::failed(format!(
                "policy check: {} difference{} between the policy and the indexes (above); update templates/platforms.toml",
                report.differences,
                if report.differences == 1 { "" } else { "s" }
            )));
        }
        if !report.checks.is_empty() && report.unreachable == report.checks.len() {
            return Err(error::absent(
                "policy check: no index answered (above); check the network, or pass --index for a mirror",
            ));
        }
        Ok(())
    }

    /// `--torch-wheels`: the GPU-code facts against the wheels.
    fn torch_wheels(
        &self,
        ctx: &Ctx,
        policy: &Policy,
        named: &BTreeMap<String, String>,
    ) -> Result<()> {
        let uv = crate::uv::ensure(&ctx.workspace, policy)?;
        let (_, here) = crate::platform::probe::os_arch();
        let rows = torch_wheels::check(&uv, policy, named, &here)?;
        let count = |v: Verdict| rows.iter().filter(|r| r.status == v).count();
        let (differs, checked) = (count(Verdict::Differs), count(Verdict::Ok));
        #[derive(Serialize)]
        struct WheelReport<'a> {
            arch: &'a str,
            torch_builds: &'a [torch_wheels::Row],
            checked: usize,
            differences: usize,
        }
        let report = WheelReport {
            arch: here.as_str(),
            torch_builds: &rows,
            checked,
            differences: differs,
        };
        self.out.emit(&report, || {
            let mut s = String::new();
            for r in &rows {
                let status = match r.status {
                    Verdict::Ok => "ok",
                    Verdict::Differs => "DIFFERS",
                    Verdict::Unreachable => "unreachable",
                    Verdict::NotChecked => "not checked",
                };
                let _ = write!(s, "{status:12} {}: {}", r.fact, r.claimed);
                if let (Some(rel), Some(ix)) = (&r.release, &r.index) {
                    let _ = write!(s, " (torch {rel} from {ix})");
                }
                s.push('\n');
                if let Some(why) = &r.reason {
                    let _ = writeln!(s, "             {why}");
                }
            }
            let _ = writeln!(
                s,
                "{checked} fact(s) agree with their wheel, {differs} differ, {} not checked here",
                rows.len() - checked - differs
            );
            s
        })?;
        if differs > 0 {
            return Err(error::failed(format!(
                "policy check --torch-wheels: {differs} [[torch.builds]] fact(s) differ from the wheels (above); correct templates/platforms.toml"
            )));
        }
        Ok(())
    }

    /// `--index URL` (the default index) and `--index NAME=URL` (a policy index).
    fn index_overrides(&self, policy: &Policy) -> Result<(String, BTreeMap<String, String>)> {
        let mut default = pypi();
        let mut named = BTreeMap::new();
        for v in &self.indexes {
            let (name, url) = match v.split_once('=') {
                Some((n, u)) if !n.contains("://") => (Some(n), u),
                _ => (None, v.as_str()),
            };
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(error::usage(format!(
                    "--index {v}: {url:?} is not an http(s) URL; give the index's simple root (or NAME=URL)"
                )));
            }
            match name {
                None => default = url.trim_end_matches('/').to_string(),
                Some(n) if policy.indexes.contains_key(n) => {
                    named.insert(n.to_string(), url.trim_end_matches('/').to_string());
                }
                Some(n) => {
                    return Err(error::usage(format!(
                        "--index {v}: {n:?} is not one of the policy's indexes ({}); use NAME=URL with one of them, or a bare URL for the default index",
                        policy
                            .indexes
                            .keys()
                            .cloned()
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
        Ok((default, named))
    }
}

/// Every claim the policy makes about wheels.
fn claims(policy: &Policy, default: &str, named: &BTreeMap<String, String>) -> Vec<Claim> {
    let mut out = Vec::new();
    for r in &policy.rules {
        let Some(wheels) = &r.wheels else { continue };
        if r.never_list {
            continue;
        }
        for package in &r.patterns {
            out.push(Claim {
                subject: match &r.versions {
                    Some(v) => format!("{package} {v}"),
                    None => package.clone(),
                },
                package: package.clone(),
                versions: r.versions.clone(),
                index: None,
                url: default.to_string(),
                claimed: wheels.clone(),
                exact: true,
            });
        }
    }
    let torch = policy
        .torch
        .packages
        .first()
        .cloned()
        .unwrap_or_else(|| "torch".into());
    for s in &policy.torch.sources {
        let url = named.get(&s.index).cloned().unwrap_or_else(|| {
            policy.indexes[&s.index]
                .url
                .trim_end_matches('/')
                .to_string()
        });
        out.push(Claim {
            subject: match &s.versions {
                Some(v) => format!("{torch} {v} on {}", s.index),
                None => format!("{torch} on {}", s.index),
            },
            package: torch.clone(),
            versions: s.specifiers().cloned(),
            index: Some(s.index.clone()),
            url,
            claimed: s.targets.clone(),
            exact: false,
        });
    }
    let unsourced: Vec<String> = policy
        .targets
        .iter()
        .filter(|t| {
            !policy
                .torch
                .sources
                .iter()
                .any(|s| s.targets.contains(&t.name))
        })
        .map(|t| t.name.clone())
        .collect();
    if !unsourced.is_empty() {
        out.push(Claim {
            subject: format!("{torch} on the default index"),
            package: torch,
            versions: None,
            index: None,
            url: default.to_string(),
            claimed: unsourced,
            exact: false,
        });
    }
    out
}

/// One claim against its page: the newest `last` releases in its versions, per target
/// the wheel that installs, and the differences from the claim.
fn judge(
    c: &Claim,
    page: &std::result::Result<simple::Page, Unread>,
    policy: &Policy,
    python: (u32, u32),
    last: usize,
) -> ClaimRow {
    let mut row = ClaimRow {
        subject: c.subject.clone(),
        package: c.package.clone(),
        versions: c.versions.as_ref().map(ToString::to_string),
        index: c.index.clone(),
        url: c.url.clone(),
        claimed: c.claimed.clone(),
        status: Verdict::Ok,
        format: None,
        releases: Vec::new(),
        differences: Vec::new(),
        reason: None,
    };
    let page = match page {
        Ok(p) => p,
        Err(Unread::Unreachable(why)) => {
            row.status = Verdict::Unreachable;
            row.reason = Some(why.clone());
            return row;
        }
        Err(Unread::NotFound(why)) => {
            row.status = Verdict::Differs;
            row.differences.push(format!(
                "{}: the index has no such project ({why})",
                c.subject
            ));
            return row;
        }
    };
    row.format = Some(page.format);
    let releases = releases(page, c);
    if releases.is_empty() {
        row.status = Verdict::Differs;
        row.differences.push(format!(
            "{}: no release{} on the index (yanked files and pre-releases do not count)",
            c.subject,
            c.versions
                .as_ref()
                .map_or(String::new(), |v| format!(" in {v}"))
        ));
        return row;
    }
    for (version, files) in releases.into_iter().rev().take(last) {
        let (wheels, differences) = release_wheels(c, policy, python, &version, &files);
        row.differences.extend(differences);
        row.releases.push(ReleaseRow {
            version: version.to_string(),
            wheels,
        });
    }
    if !row.differences.is_empty() {
        row.status = Verdict::Differs;
    }
    row
}

/// One release: per target the wheel that installs (at its floor and the policy's
/// Python), and where that differs from the claim.
fn release_wheels(
    c: &Claim,
    policy: &Policy,
    python: (u32, u32),
    version: &Version,
    files: &[String],
) -> (BTreeMap<String, Option<String>>, Vec<String>) {
    let mut wheels = BTreeMap::new();
    let mut differences = Vec::new();
    for t in &policy.targets {
        let platform = Platform::for_target(t);
        let parsed = files
            .iter()
            .filter_map(|f| tags::parse_wheel(f).map(|w| (f.as_str(), w)));
        let best = tags::best(parsed, python, &platform).map(str::to_string);
        let claimed = c.claimed.contains(&t.name);
        match (&best, claimed) {
            (None, true) => differences.push(format!(
                "{} {version}: no {} wheel{} — policy says yes",
                c.package,
                t.name,
                floor_words(t)
            )),
            (Some(w), false) if c.exact => differences.push(format!(
                "{} {version}: a {} wheel ({w}) — policy says none",
                c.package, t.name
            )),
            _ => {}
        }
        wheels.insert(t.name.clone(), best);
    }
    (wheels, differences)
}

/// " (at glibc 2.28)" / " (at macOS 14.0)": the floor a target's wheels are held to.
fn floor_words(t: &Target) -> String {
    match (&t.glibc, &t.macos) {
        (Some(g), _) => format!(" at glibc {g}"),
        (None, Some(m)) => format!(" at macOS {m}"),
        _ => String::new(),
    }
}

/// The page's releases in the claim's versions, oldest first: each version with the
/// names of its files that are not yanked. Pre-releases and releases whose every file is
/// yanked are left out.
fn releases(page: &simple::Page, c: &Claim) -> Vec<(Version, Vec<String>)> {
    let mut by: BTreeMap<Version, Vec<String>> = BTreeMap::new();
    for f in page.files.iter().filter(|f| !f.yanked) {
        let Some(v) = simple::file_version(&f.filename, &c.package) else {
            continue;
        };
        if v.any_prerelease() {
            continue;
        }
        let public = v.clone().without_local();
        if c.versions.as_ref().is_some_and(|s| !s.contains(&public)) {
            continue;
        }
        by.entry(v).or_default().push(f.filename.clone());
    }
    by.into_iter().collect()
}

fn text(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "policy check: the newest {} release{} of each claim, Python {}, default index {}",
        r.last,
        if r.last == 1 { "" } else { "s" },
        r.python,
        r.default_index
    );
    for c in &r.checks {
        let word = match c.status {
            Verdict::Ok => "ok",
            Verdict::Differs => "DIFFERS",
            Verdict::Unreachable | Verdict::NotChecked => "skipped",
        };
        let versions: Vec<&str> = c.releases.iter().map(|r| r.version.as_str()).collect();
        let what = match c.status {
            Verdict::Unreachable => format!(
                "{} — cannot read it: {}",
                c.url,
                c.reason.as_deref().unwrap_or("no answer")
            ),
            _ if c.claimed.is_empty() => format!("{}: sdist only", versions.join(", ")),
            _ => format!(
                "{}: wheels for {}",
                versions.join(", "),
                c.claimed.join(", ")
            ),
        };
        let _ = writeln!(s, "{word:<8} {}  {what}", c.subject);
        for d in &c.differences {
            let _ = writeln!(s, "         {d}");
        }
    }
    let _ = write!(
        s,
        "{} difference{}",
        r.differences,
        if r.differences == 1 { "" } else { "s" }
    );
    if r.unreachable > 0 {
        let _ = write!(
            s,
            "; {} claim(s) not checked (index unreachable)",
            r.unreachable
        );
    }
    s.push('\n');
    s
}
