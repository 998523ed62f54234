//! `audit` against `uv sync --frozen --dry-run --offline --python-platform` over a corpus
//! of public projects' pyproject.toml (tests/fixtures/uvcorpus/corpus.toml): each is
//! locked here with uv against PyPI (pinned by `exclude-newer`), then for three targets
//! and three selections (default; all groups and extras; --no-dev) the verdicts must
//! agree (installs / fails / refused) and, where uv installs, audit's reached packages
//! must equal uv's `Would install` set.
//!
//! The slice marked `slice = true` runs with the tests; `XTASK_UV_CORPUS=all` runs every
//! project and prints the table and the time ratio. Locks are kept under
//! `$XTASK_UV_CORPUS_CACHE` (default `~/.cache/xtask-ci/uvcorpus`) by pyproject hash.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

#[derive(serde::Deserialize)]
struct Corpus {
    project: Vec<Entry>,
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
struct Entry {
    name: String,
    repo: String,
    commit: String,
    exclude_newer: String,
    #[serde(default)]
    slice: bool,
    /// Selections tried besides the three every project gets.
    #[serde(default)]
    selections: Vec<Vec<String>>,
}

const TARGETS: [(&str, &str); 3] = [
    ("linux-x86_64-cuda", "x86_64-manylinux_2_28"),
    ("linux-aarch64-cuda", "aarch64-manylinux_2_28"),
    ("macos-arm64-mps", "aarch64-apple-darwin"),
];

const SELECTIONS: [(&str, &[&str]); 3] = [
    ("default", &[]),
    ("all", &["--all-groups", "--all-extras"]),
    ("no-dev", &["--no-dev"]),
];

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Installs(BTreeSet<String>),
    /// uv: the package its error names; audit: every package it lists as missing.
    Fails(BTreeSet<String>),
    Refused(String),
}

impl Verdict {
    fn word(&self) -> &'static str {
        match self {
            Verdict::Installs(_) => "installs",
            Verdict::Fails(_) => "fails",
            Verdict::Refused(_) => "refused",
        }
    }
}

fn cache_dir() -> PathBuf {
    std::env::var_os("XTASK_UV_CORPUS_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into()))
                .join(".cache/xtask-ci/uvcorpus")
        })
}

/// Indexes this machine cannot reach (download.pytorch.org) and the sources that use
/// them come out, and so do `extra-index-url`s, and requirements and sources from git
/// (no GitHub here);
/// everything else is the project's file as committed.
fn reachable_only(text: &str) -> String {
    let mut doc: toml_edit::DocumentMut = text.parse().expect("corpus pyproject parses");
    let from_git = |v: &toml_edit::Value| v.as_str().is_some_and(|r| r.contains("git+"));
    let mut lists: Vec<&mut toml_edit::Array> = Vec::new();
    if let Some(p) = doc.get_mut("project").and_then(|p| p.as_table_like_mut()) {
        for (k, v) in p.iter_mut() {
            if k == "dependencies" {
                lists.extend(v.as_array_mut());
            } else if k == "optional-dependencies"
                && let Some(t) = v.as_table_like_mut()
            {
                lists.extend(t.iter_mut().filter_map(|(_, v)| v.as_array_mut()));
            }
        }
    }
    for l in lists {
        l.retain(|v| !from_git(v));
    }
    if let Some(t) = doc
        .get_mut("dependency-groups")
        .and_then(|t| t.as_table_like_mut())
    {
        for (_, v) in t.iter_mut() {
            if let Some(a) = v.as_array_mut() {
                a.retain(|v| !from_git(v));
            }
        }
    }
    let Some(uv) = doc
        .get_mut("tool")
        .and_then(|t| t.get_mut("uv"))
        .and_then(|t| t.as_table_like_mut())
    else {
        return doc.to_string();
    };
    // Legacy extra indexes off PyPI (storage buckets) are not reachable either.
    uv.remove("extra-index-url");
    let mut gone: Vec<String> = Vec::new();
    if let Some(idx) = uv.get_mut("index").and_then(|i| i.as_array_of_tables_mut()) {
        idx.retain(|t| {
            let url = t.get("url").and_then(|u| u.as_str()).unwrap_or_default();
            let keep = !url.contains("download.pytorch.org");
            if !keep && let Some(n) = t.get("name").and_then(|n| n.as_str()) {
                gone.push(n.to_string());
            }
            keep
        });
    }
    if let Some(sources) = uv.get_mut("sources").and_then(|s| s.as_table_like_mut()) {
        // A source on an unreachable index, or in git: the package comes from PyPI.
        let uses_gone = |v: &toml_edit::Value| {
            v.as_inline_table().is_some_and(|t| {
                t.contains_key("git")
                    || t.get("index")
                        .and_then(|i| i.as_str())
                        .is_some_and(|i| gone.iter().any(|g| g == i))
            })
        };
        let names: Vec<String> = sources.iter().map(|(k, _)| k.to_string()).collect();
        for name in names {
            let item = sources.get_mut(&name).unwrap();
            let drop = match item.as_value_mut() {
                Some(toml_edit::Value::Array(a)) => {
                    a.retain(|v| !uses_gone(v));
                    a.is_empty()
                }
                Some(v) => uses_gone(v),
                None => false,
            };
            if drop {
                sources.remove(&name);
            }
        }
    }
    doc.to_string()
}

/// The project locked here: a folder holding its pyproject.toml and uv.lock.
/// The project's pyproject.toml as it is locked here.
fn adjusted(e: &Entry) -> String {
    let src = fixtures()
        .join("uvcorpus")
        .join(&e.name)
        .join("pyproject.toml");
    reachable_only(&std::fs::read_to_string(&src).unwrap())
}

fn locked(e: &Entry, text: &str, uv: &Path, py: &Path) -> Option<PathBuf> {
    // Without requires-python uv takes the locking interpreter's as the lock's: key by it.
    let key = format!(
        "{:016x}",
        fnv(&format!("{}\n{}\n{text}", e.exclude_newer, py.display()))
    );
    let dir = cache_dir().join(&e.name).join(key);
    if dir.join("uv.lock").is_file() {
        return Some(dir);
    }
    std::fs::create_dir_all(&dir).unwrap();
    // The other files of a written project (a requirements.txt its backend reads).
    for f in std::fs::read_dir(fixtures().join("uvcorpus").join(&e.name)).unwrap() {
        let f = f.unwrap();
        if f.file_type().unwrap().is_file() && f.file_name() != "pyproject.toml" {
            std::fs::copy(f.path(), dir.join(f.file_name())).unwrap();
        }
    }
    std::fs::write(dir.join("pyproject.toml"), text).unwrap();
    let o = Command::new(uv)
        .args(["lock", "--exclude-newer", &e.exclude_newer])
        .current_dir(&dir)
        .env("UV_PYTHON", py)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_PYTHON_PREFERENCE", "system")
        .output()
        .unwrap();
    if !o.status.success() {
        let err = text_of(&o.stderr);
        let _ = std::fs::remove_dir_all(&dir);
        skip_or_fail(
            "uv-corpus",
            &format!(
                "uv lock {} ({}@{}): {}",
                e.name,
                e.repo,
                e.commit,
                last_line(&err)
            ),
        );
        return None;
    }
    Some(dir)
}

fn text_of(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn last_line(s: &str) -> String {
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .to_string()
}

fn fnv(s: &str) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    h
}

/// The Python audit and uv both use: the lowest interpreter here (3.10-3.13) whose own
/// version requires-python admits, as its `X.Y.Z` and path.
fn python_for(pyproject: &str) -> Option<(String, PathBuf)> {
    use std::str::FromStr;
    let doc: toml_edit::DocumentMut = pyproject.parse().unwrap();
    let requires = doc
        .get("project")
        .and_then(|p| p.get("requires-python"))
        .and_then(|r| r.as_str())
        .unwrap_or(">=3.10");
    let specs = pep508_rs::pep440_rs::VersionSpecifiers::from_str(requires).ok()?;
    for v in ["3.10", "3.11", "3.12", "3.13"] {
        let Some(p) = python(v) else { continue };
        // The interpreter's own X.Y.Z, as uv sees it (python_full_version markers).
        let full = Command::new(&p)
            .args(["-c", "import platform; print(platform.python_version())"])
            .output()
            .ok()
            .map(|o| text_of(&o.stdout).trim().to_string())
            .filter(|f| f.starts_with(v))?;
        let version = pep508_rs::pep440_rs::Version::from_str(&full).ok()?;
        if specs.contains(&version) {
            return Some((full, p));
        }
    }
    eprintln!("no Python 3.10-3.13 here fits requires-python {requires:?}");
    None
}

/// `macos` of the macOS target in `templates/platforms.toml`.
fn macos_floor() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml");
    let doc: toml::Table = std::fs::read_to_string(&path).unwrap().parse().unwrap();
    doc["targets"]["macos-arm64-mps"]["macos"]
        .as_str()
        .unwrap()
        .to_string()
}

fn uv_verdict(
    uv: &Path,
    dir: &Path,
    py: &Path,
    platform: &str,
    flags: &[&str],
) -> (Verdict, Duration) {
    let t = Instant::now();
    let o = Command::new(uv)
        .args([
            "sync",
            "--frozen",
            "--dry-run",
            "--offline",
            "--python-platform",
            platform,
        ])
        .arg("--python")
        .arg(py)
        .args(flags)
        .current_dir(dir)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_PYTHON_PREFERENCE", "system")
        // uv judges aarch64-apple-darwin at macOS 13.0 unless told; audit judges at the
        // policy's floor, so uv is asked at the same one.
        .env("MACOSX_DEPLOYMENT_TARGET", macos_floor())
        .output()
        .unwrap();
    let took = t.elapsed();
    let err = text_of(&o.stderr);
    if o.status.success() {
        let out = text_of(&o.stdout);
        let set = err
            .lines()
            .chain(out.lines())
            .filter_map(|l| l.trim().strip_prefix("+ "))
            .map(normalize_line)
            .collect();
        return (Verdict::Installs(set), took);
    }
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or("error: ?")
        .to_string();
    if line.contains("doesn't have a source distribution or wheel")
        || line.contains("can't be installed because")
    {
        // "Distribution `name==1.0 @ registry+...` can't be installed ..."
        let named = line
            .split('`')
            .nth(1)
            .and_then(|d| d.split("==").next())
            .map(|n| normalize_line(n).trim_end_matches("==").to_string());
        (Verdict::Fails(named.into_iter().collect()), took)
    } else {
        (Verdict::Refused(line), took)
    }
}

/// `Name==1.0` as audit writes names: normalised. uv shows a local project as
/// `name @ file://...`: that is `name==` (its version is not shown).
fn normalize_line(l: &str) -> String {
    let (name, version) = match l.split_once(" @ ") {
        Some((name, _)) => (name, ""),
        None => l.split_once("==").unwrap_or((l, "")),
    };
    let n = model::names::normalize(name.trim());
    format!("{n}=={}", version.trim())
}

fn audit_verdicts(
    dir: &Path,
    python: &str,
    flags: &[&str],
    root: &str,
) -> (Vec<Verdict>, Duration) {
    let t = Instant::now();
    let o = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--project")
        .arg(dir)
        .args(["audit", "--json", "--python", python])
        .args(flags)
        .output()
        .unwrap();
    let took = t.elapsed();
    let err = text_of(&o.stderr);
    if o.status.code() == Some(2) {
        let line = err
            .lines()
            .find(|l| l.starts_with("error:"))
            .unwrap_or("?")
            .to_string();
        return (vec![Verdict::Refused(line); TARGETS.len()], took);
    }
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("audit --json ({e}): {err}"));
    let verdicts = TARGETS
        .iter()
        .map(|(name, _)| {
            let t = v["targets"]
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["name"] == *name)
                .unwrap_or_else(|| panic!("no target {name}"));
            if let Some(why) = t["refused"].as_str() {
                return Verdict::Refused(format!("error: {why}"));
            }
            let pkgs = t["packages"].as_array().unwrap();
            let missing: BTreeSet<String> = pkgs
                .iter()
                .filter(|p| p["status"] == "missing")
                .map(|p| {
                    normalize_line(p["name"].as_str().unwrap())
                        .trim_end_matches("==")
                        .to_string()
                })
                .collect();
            if !missing.is_empty() {
                return Verdict::Fails(missing);
            }
            Verdict::Installs(
                pkgs.iter()
                    .filter(|p| p["status"] != "excluded")
                    .map(|p| {
                        normalize_line(&format!(
                            "{}=={}",
                            p["name"].as_str().unwrap(),
                            p["version"].as_str().unwrap()
                        ))
                    })
                    .filter(|l| !l.starts_with(&format!("{root}==")))
                    .collect(),
            )
        })
        .collect();
    (verdicts, took)
}

/// Whether uv would re-lock (`uv lock --check --offline`), and whether audit warns the
/// lock is stale.
fn staleness(uv: &Path, dir: &Path, py: &Path, exclude_newer: &str) -> (bool, bool) {
    let o = Command::new(uv)
        .args([
            "lock",
            "--check",
            "--offline",
            "--exclude-newer",
            exclude_newer,
        ])
        .current_dir(dir)
        .env("UV_PYTHON", py)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_PYTHON_PREFERENCE", "system")
        .output()
        .unwrap();
    let a = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .arg("--project")
        .arg(dir)
        .args(["audit", "--target", "linux-x86_64-cuda"])
        .output()
        .unwrap();
    (
        !o.status.success(),
        text_of(&a.stderr).contains("uv.lock is stale"),
    )
}

/// Edits to pyproject.toml after locking, each of which uv answers with a re-lock.
const EDITS: [&str; 3] = [
    "a dependency added",
    "a dependency group added",
    "an extra's pin changed",
];

/// The edit applied, or None where the project has nothing it applies to (no static
/// `dependencies`, no extras).
fn edited(text: &str, edit: usize) -> Option<String> {
    let mut doc: toml_edit::DocumentMut = text.parse().unwrap();
    match edit {
        0 => {
            doc["project"]
                .get_mut("dependencies")?
                .as_array_mut()?
                .push("wheel>=0.40");
        }
        1 => {
            doc["dependency-groups"]["release"] =
                toml_edit::value(toml_edit::Array::from_iter(["twine"]));
        }
        _ => {
            let extras = doc["project"]
                .get_mut("optional-dependencies")?
                .as_table_like_mut()?;
            let (_, first) = extras.iter_mut().next()?;
            let a = first.as_array_mut()?;
            let pinned = format!("{}, <99", a.get(0)?.as_str()?);
            a.replace(0, pinned);
        }
    }
    Some(doc.to_string())
}

#[test]
fn audit_agrees_with_uv_sync_on_public_projects() {
    let Some(uv) = find_uv() else {
        return;
    };
    let corpus: Corpus =
        toml::from_str(&std::fs::read_to_string(fixtures().join("uvcorpus/corpus.toml")).unwrap())
            .unwrap();
    let all = std::env::var("XTASK_UV_CORPUS").is_ok_and(|v| v == "all");
    let mut tally = Tally::default();
    for e in corpus.project.iter().filter(|e| all || e.slice) {
        let text = adjusted(e);
        let Some((py_short, py)) = python_for(&text) else {
            skip_or_fail(
                "uv-corpus",
                &format!("{}: no Python 3.10-3.13 here fits it", e.name),
            );
            continue;
        };
        let Some(dir) = locked(e, &text, &uv, &py) else {
            continue;
        };
        staleness_agrees(&mut tally, e, &uv, &dir, &py);
        selections_agree(&mut tally, e, &uv, &dir, (&py_short, &py));
    }
    tally.report();
}

/// The cases compared so far: a row each for the log, and where audit and uv differ.
#[derive(Default)]
struct Tally {
    rows: Vec<String>,
    disagreements: Vec<String>,
    cases: usize,
    agree: usize,
    /// audit's time over uv's, per selection where both did the work.
    ratios: Vec<f64>,
}

impl Tally {
    fn case(&mut self, same: bool, disagreement: impl FnOnce() -> String) {
        self.cases += 1;
        if same {
            self.agree += 1;
        } else {
            self.disagreements.push(disagreement());
        }
    }

    fn report(mut self) {
        self.ratios.sort_by(f64::total_cmp);
        for r in &self.rows {
            eprintln!("{r}");
        }
        if let (Some(median), Some(max)) =
            (self.ratios.get(self.ratios.len() / 2), self.ratios.last())
        {
            eprintln!(
                "{} of {} cases agree; audit time / uv time (three targets): median {median:.2}, max {max:.2}",
                self.agree, self.cases
            );
        }
        assert!(
            self.disagreements.is_empty(),
            "{}",
            self.disagreements.join("\n")
        );
    }
}

/// Staleness: the fresh lock, then (slice projects) copies edited after locking.
fn staleness_agrees(tally: &mut Tally, e: &Entry, uv: &Path, dir: &Path, py: &Path) {
    let (theirs, ours) = staleness(uv, dir, py, &e.exclude_newer);
    tally.case(theirs == ours, || {
        format!(
            "{} fresh lock: uv stale {theirs}, audit stale {ours}",
            e.name
        )
    });
    if !e.slice {
        return;
    }
    let text = std::fs::read_to_string(dir.join("pyproject.toml")).unwrap();
    for (i, what) in EDITS.iter().enumerate() {
        let Some(changed) = edited(&text, i) else {
            continue;
        };
        let copy = tempfile::tempdir().unwrap();
        copy_dir(dir, copy.path());
        std::fs::write(copy.path().join("pyproject.toml"), changed).unwrap();
        let (theirs, ours) = staleness(uv, copy.path(), py, &e.exclude_newer);
        tally.rows.push(format!(
            "{:24} {:28} {:20} uv stale {theirs:5} audit stale {ours:5}",
            e.name, what, "-"
        ));
        tally.case(theirs && ours, || {
            format!("{} {what}: uv stale {theirs}, audit stale {ours}", e.name)
        });
    }
}

/// Each selection (the shared ones and the project's own) on each target: what audit
/// says installs, against uv's dry run for that platform.
fn selections_agree(tally: &mut Tally, e: &Entry, uv: &Path, dir: &Path, py: (&str, &Path)) {
    let (py_short, py) = py;
    let doc: toml_edit::DocumentMut = std::fs::read_to_string(dir.join("pyproject.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let root = normalize_line(doc["project"]["name"].as_str().unwrap());
    let root = root.trim_end_matches("==").to_string();
    let mut selections: Vec<(String, Vec<&str>)> = SELECTIONS
        .iter()
        .map(|(n, f)| (n.to_string(), f.to_vec()))
        .collect();
    for extra in &e.selections {
        selections.push((extra.join(" "), extra.iter().map(String::as_str).collect()));
    }
    for (sel, flags) in &selections {
        let flags = flags.as_slice();
        let (ours, audit_time) = audit_verdicts(dir, py_short, flags, &root);
        let mut uv_time = Duration::ZERO;
        for (i, (target, platform)) in TARGETS.iter().enumerate() {
            let (theirs, took) = uv_verdict(uv, dir, py, platform, flags);
            uv_time += took;
            let theirs = match theirs {
                Verdict::Installs(s) => Verdict::Installs(
                    s.into_iter()
                        .filter(|l| !l.starts_with(&format!("{root}==")))
                        .collect(),
                ),
                v => v,
            };
            let same = match (&ours[i], &theirs) {
                (Verdict::Refused(_), Verdict::Refused(_)) => true,
                // The package uv names is one audit lists as missing.
                (Verdict::Fails(ours), Verdict::Fails(named)) => named.is_subset(ours),
                (a, b) => a == b,
            };
            tally.case(same, || {
                let detail = match (&ours[i], &theirs) {
                    (Verdict::Installs(a), Verdict::Installs(b)) => format!(
                        "audit only: {:?}; uv only: {:?}",
                        a.difference(b).collect::<Vec<_>>(),
                        b.difference(a).collect::<Vec<_>>()
                    ),
                    (a, b) => format!("audit {} / uv {} ({b:?})", a.word(), b.word()),
                };
                format!("{} {sel} {target}: {detail}", e.name)
            });
            tally.rows.push(format!(
                "{:24} {:28} {:20} uv {:9} audit {:9} {}",
                e.name,
                sel,
                target,
                theirs.word(),
                ours[i].word(),
                if same { "=" } else { "DIFFERS" }
            ));
        }
        // Only where both did the work: a refusal takes neither any time.
        if ours.iter().all(|v| !matches!(v, Verdict::Refused(_))) {
            tally
                .ratios
                .push(audit_time.as_secs_f64() / uv_time.as_secs_f64().max(1e-6));
        }
    }
}
