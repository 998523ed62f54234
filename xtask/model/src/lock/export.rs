//! uv.lock exported for installers that are not uv: one requirements file per target
//! (with hashes and each package's index), a universal requirements.txt with the targets'
//! markers, or one PEP 751 pylock.toml.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use anyhow::Result;
use toml_edit::{Array, ArrayOfTables, DocumentMut, InlineTable, Table, value};

use crate::error;
use crate::lock::{self, Dist, Lock, Package, Source, tags};
use crate::policy::{Policy, Target};

/// Each target with the packages it reaches and the file each would install.
pub type PerTarget<'p> = Vec<(&'p Target, Vec<(usize, Choice)>)>;

/// Per target: each reached package with the file it would install; an error naming
/// every package with nothing installable, before anything is written.
pub fn installs<'p>(
    proj: &lock::Project,
    targets: &[&'p Target],
    chosen: &lock::Chosen,
) -> Result<PerTarget<'p>> {
    let (lock, root) = (&proj.lock, proj.root());
    let python = proj.python()?;
    let py = format!("{}.{}", python.0, python.1);
    let mut per_target = Vec::new();
    let mut missing = Vec::new();
    for t in targets {
        let walk = lock.walk(root, &t.env_at(&py)?, chosen)?;
        let plat = tags::Platform::for_target(t);
        let mut rows = Vec::new();
        for i in walk.reached {
            let p = &lock.package[i];
            match choose(p, python, &plat) {
                Some(c) => rows.push((i, c)),
                None => missing.push(format!(
                    "{} {} on {}",
                    p.name,
                    p.version.as_deref().unwrap_or(""),
                    t.name
                )),
            }
        }
        rows.sort_by(|a, b| lock.package[a.0].name.cmp(&lock.package[b.0].name));
        per_target.push((*t, rows));
    }
    if !missing.is_empty() {
        return Err(error::failed(format!(
            "no installable file for: {} (see `cargo xtask audit`); nothing written",
            missing.join(", ")
        )));
    }
    Ok(per_target)
}

/// What a target installs of a package.
#[derive(Clone)]
pub enum Choice {
    /// The best wheel, and every file of the package (for hashes).
    Wheel(Dist),
    Sdist(Dist),
    /// A source pip can take by URL (git, url archive, path).
    Direct(String),
    /// The project itself or a local workspace member.
    Local(String),
}

fn choose(p: &Package, python: (u32, u32), plat: &tags::Platform) -> Option<Choice> {
    let named = p
        .wheels
        .iter()
        .filter_map(|w| Some((w, tags::parse_wheel(&w.filename()?)?)));
    if let Some(w) = tags::best(named, python, plat) {
        return Some(Choice::Wheel(w.clone()));
    }
    if let Some(at) = p.source.local_at() {
        return Some(Choice::Local(at.to_string()));
    }
    if let Source::Git(g) = &p.source {
        return Some(Choice::Direct(format!("git+{g}")));
    }
    if let Some(sd) = &p.sdist {
        return Some(Choice::Sdist(sd.clone()));
    }
    match &p.source {
        Source::Url(u) => Some(Choice::Direct(u.clone())),
        _ => None,
    }
}

fn root_is_package(lock: &Lock) -> bool {
    lock.package
        .iter()
        .any(|p| matches!(&p.source, Source::Editable(at) | Source::Directory(at) if at == "."))
}

/// The registry most packages come from: the default index; others are explicit.
pub fn default_registry(lock: &Lock) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in &lock.package {
        if let Some(r) = p.source.registry() {
            *counts.entry(r).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(r, _)| r.to_string())
}

fn hashes_of(p: &Package) -> Vec<String> {
    let mut h: Vec<String> = p
        .wheels
        .iter()
        .chain(p.sdist.iter())
        .filter_map(|d| d.hash.clone())
        .collect();
    h.sort();
    h.dedup();
    h
}

/// One requirement of a requirements file, before rendering.
struct Entry {
    /// `name==version`, `name @ URL`, or a `# ...` comment for local packages.
    head: String,
    /// ` ; marker`, or empty.
    marker: String,
    hashes: Vec<String>,
}

/// What a target installs of a package, as a requirement.
fn entry(lock: &Lock, i: usize, choice: &Choice, default_index: Option<&str>) -> Entry {
    let p = &lock.package[i];
    let version = p.version.clone().unwrap_or_default();
    let explicit = p
        .source
        .registry()
        .is_some_and(|r| Some(r) != default_index);
    let (head, hashes) = match choice {
        Choice::Wheel(w) | Choice::Sdist(w) if explicit => (
            format!("{} @ {}", p.name, w.url.clone().unwrap_or_default()),
            w.hash.iter().cloned().collect(),
        ),
        Choice::Wheel(_) | Choice::Sdist(_) => (format!("{}=={version}", p.name), hashes_of(p)),
        Choice::Direct(url) => (format!("{} @ {url}", p.name), Vec::new()),
        Choice::Local(at) => (
            format!(
                "# {} is installed from {at} (the project or a local member)",
                p.name
            ),
            Vec::new(),
        ),
    };
    Entry {
        head,
        marker: String::new(),
        hashes,
    }
}

/// The header, then the requirements. Hashes are written only when every requirement
/// has them: pip's hash-checking mode is all or nothing.
fn render(header: &[String], default_index: Option<&str>, entries: &[Entry]) -> String {
    let reqs: Vec<&Entry> = entries
        .iter()
        .filter(|e| !e.head.starts_with('#'))
        .collect();
    let unhashed: Vec<&str> = reqs
        .iter()
        .filter(|e| e.hashes.is_empty())
        .map(|e| e.head.as_str())
        .collect();
    let mut s = String::new();
    for h in header {
        let _ = writeln!(s, "# {h}");
    }
    if !unhashed.is_empty() && unhashed.len() < reqs.len() {
        let _ = writeln!(
            s,
            "# No hashes: uv.lock has none for {} (pip checks hashes for all requirements or none).",
            unhashed.join(", ")
        );
    }
    if let Some(ix) = default_index {
        let _ = writeln!(s, "--index-url {ix}");
    }
    for e in entries {
        let _ = write!(s, "{}{}", e.head, e.marker);
        if unhashed.is_empty() {
            for h in &e.hashes {
                let _ = write!(s, " \\\n    --hash={h}");
            }
        }
        s.push('\n');
    }
    s
}

fn project_note(lock: &Lock) -> Option<String> {
    root_is_package(lock).then(|| {
        "The project itself is not listed: install it with `pip install --no-deps -e .`".into()
    })
}

pub fn requirements_txt(
    lock: &Lock,
    t: &Target,
    py: &str,
    rows: &[(usize, Choice)],
    default_index: Option<&str>,
    path: &camino::Utf8Path,
) -> String {
    let mut header = vec![
        "Generated by `cargo xtask requirements` from uv.lock: do not edit.".to_string(),
        format!(
            "Target {}: {} ({}), Python {py}.",
            t.name, t.about, t.marker
        ),
        format!("For that platform only: pip install -r {path}"),
    ];
    header.extend(project_note(lock));
    let entries: Vec<Entry> = rows
        .iter()
        .map(|(i, c)| entry(lock, *i, c, default_index))
        .collect();
    render(&header, default_index, &entries)
}

/// One requirements file for every target: a package installed on every target is
/// written without a marker; one installed on some carries the `or` of their markers; a
/// package from an explicit index (torch) is written per wheel as `name @ URL ; marker`.
/// Returns the text and the number of requirements.
pub fn universal_txt(
    lock: &Lock,
    per_target: &PerTarget,
    py: &str,
    default_index: Option<&str>,
) -> (String, usize) {
    // Package → (target, choice) for every target that installs it.
    let mut on: BTreeMap<usize, Vec<(&Target, &Choice)>> = BTreeMap::new();
    for (t, rows) in per_target {
        for (i, c) in rows {
            on.entry(*i).or_default().push((t, c));
        }
    }
    let marker = |ts: &[&Target]| -> String {
        match ts {
            _ if ts.len() == per_target.len() => String::new(),
            [one] => format!(" ; {}", one.marker),
            _ => {
                let parts: Vec<String> = ts.iter().map(|t| format!("({})", t.marker)).collect();
                format!(" ; {}", parts.join(" or "))
            }
        }
    };
    let mut order: Vec<usize> = on.keys().copied().collect();
    order.sort_by(|a, b| lock.package[*a].name.cmp(&lock.package[*b].name));
    let mut entries: Vec<Entry> = Vec::new();
    for i in order {
        // Targets grouped by what they install: an explicit index's wheel differs per
        // platform; anything else is one requirement.
        let mut groups: Vec<(Entry, Vec<&Target>)> = Vec::new();
        for (t, c) in &on[&i] {
            let e = entry(lock, i, c, default_index);
            match groups.iter_mut().find(|(g, _)| g.head == e.head) {
                Some(g) => g.1.push(t),
                None => groups.push((e, vec![t])),
            }
        }
        for (mut e, ts) in groups {
            if !e.head.starts_with('#') {
                e.marker = marker(&ts);
            }
            entries.push(e);
        }
    }
    let mut header = vec![
        "Generated by `cargo xtask requirements` from uv.lock: do not edit.".to_string(),
        format!(
            "Every target, Python {py}: {}.",
            per_target
                .iter()
                .map(|(t, _)| format!("{} ({})", t.name, t.marker))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        "Packages only some targets install carry those targets' markers.".to_string(),
        "Install with `pip install -r requirements.txt`; requirements/<target>.txt is one target's.".to_string(),
    ];
    header.extend(project_note(lock));
    let count = entries.iter().filter(|e| !e.head.starts_with('#')).count();
    (render(&header, default_index, &entries), count)
}

pub fn pylock(lock: &Lock, per_target: &PerTarget, policy: &Policy) -> String {
    let mut doc = DocumentMut::new();
    doc["lock-version"] = value("1.0");
    let envs: Array = per_target.iter().map(|(t, _)| t.marker.as_str()).collect();
    doc["environments"] = value(envs);
    if let Some(rp) = &lock.requires_python {
        doc["requires-python"] = value(rp.as_str());
    }
    doc["created-by"] = value("cargo-xtask");
    // Each package once, with the targets that install it.
    let mut order: Vec<usize> = Vec::new();
    let mut on: BTreeMap<usize, Vec<&Target>> = BTreeMap::new();
    for (t, rows) in per_target {
        for (i, _) in rows {
            if !on.contains_key(i) {
                order.push(*i);
            }
            on.entry(*i).or_default().push(t);
        }
    }
    order.sort_by(|a, b| {
        (&lock.package[*a].name, &lock.package[*a].version)
            .cmp(&(&lock.package[*b].name, &lock.package[*b].version))
    });
    let mut packages = ArrayOfTables::new();
    for i in order {
        let p = &lock.package[i];
        let mut t = Table::new();
        t.insert("name", value(p.name.as_str()));
        if let Some(v) = &p.version {
            t.insert("version", value(v.as_str()));
        }
        let ts = &on[&i];
        if ts.len() < policy.targets.len() {
            let parts: Vec<String> = ts.iter().map(|t| format!("({})", t.marker)).collect();
            t.insert("marker", value(parts.join(" or ")));
        }
        pylock_source(p, &mut t);
        pylock_files(p, &mut t);
        packages.push(t);
    }
    doc["packages"] = toml_edit::Item::ArrayOfTables(packages);
    format!(
        "# Generated by `cargo xtask requirements --format pylock` from uv.lock: do not edit.\n{doc}"
    )
}

/// Where a package comes from: an index, a git repository or a directory.
fn pylock_source(p: &Package, t: &mut Table) {
    match &p.source {
        Source::Registry(r) => {
            t.insert("index", value(r.as_str()));
        }
        Source::Git(g) => {
            let mut vcs = InlineTable::new();
            vcs.insert("type", "git".into());
            vcs.insert("url", g.as_str().into());
            t.insert("vcs", value(vcs));
        }
        Source::Editable(at) | Source::Directory(at) | Source::Virtual(at) => {
            let mut dir = InlineTable::new();
            dir.insert("path", at.as_str().into());
            let editable = matches!(p.source, Source::Editable(_));
            dir.insert("editable", editable.into());
            t.insert("directory", value(dir));
        }
        Source::Url(_) | Source::Path(_) | Source::Unknown => {}
    }
}

/// A package's sdist and wheels, each with its name, location and hash.
fn pylock_files(p: &Package, t: &mut Table) {
    let file = |d: &Dist| {
        let mut f = InlineTable::new();
        if let Some(n) = d.filename() {
            f.insert("name", n.as_str().into());
        }
        if let Some(u) = &d.url {
            f.insert("url", u.as_str().into());
        }
        if let Some(pth) = &d.path {
            f.insert("path", pth.as_str().into());
        }
        let mut h = InlineTable::new();
        if let Some((algo, hex)) = d.hash.as_deref().and_then(|h| h.split_once(':')) {
            h.insert(algo, hex.into());
        }
        f.insert("hashes", h.into());
        f
    };
    if let Some(sd) = &p.sdist {
        t.insert("sdist", value(file(sd)));
    }
    if !p.wheels.is_empty() {
        let mut arr = Array::new();
        for w in &p.wheels {
            let mut v = toml_edit::Value::InlineTable(file(w));
            v.decor_mut().set_prefix("\n    ");
            arr.push_formatted(v);
        }
        arr.set_trailing_comma(true);
        arr.set_trailing("\n");
        t.insert("wheels", value(arr));
    }
}
