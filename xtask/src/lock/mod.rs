//! A typed model of uv.lock (lock `version = 1`) and a walk of its graph for one target,
//! the way `uv sync` would choose packages: root dependencies, requested extras and
//! dependency groups, markers evaluated for the target, forks chosen by resolution
//! markers.

pub mod audit;
pub mod tags;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use anyhow::Result;
use indexmap::IndexMap;
use pep508_rs::{MarkerEnvironment, MarkerTree};
use serde::Deserialize;

use crate::error;
use crate::pep;
use crate::policy::{self, line_col};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Lock {
    pub version: u32,
    #[serde(default)]
    pub revision: Option<u32>,
    #[serde(default)]
    pub requires_python: Option<String>,
    #[serde(default)]
    pub resolution_markers: Vec<String>,
    #[serde(default)]
    pub supported_markers: Vec<String>,
    #[serde(default)]
    pub required_markers: Vec<String>,
    #[serde(default)]
    pub manifest: Option<Manifest>,
    #[serde(default)]
    pub package: Vec<Package>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Manifest {
    #[serde(default)]
    pub members: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Package {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub source: Source,
    #[serde(default)]
    pub resolution_markers: Vec<String>,
    #[serde(default)]
    pub dependencies: Vec<Dep>,
    #[serde(default)]
    pub optional_dependencies: IndexMap<String, Vec<Dep>>,
    #[serde(default)]
    pub dev_dependencies: IndexMap<String, Vec<Dep>>,
    #[serde(default)]
    pub sdist: Option<Dist>,
    #[serde(default)]
    pub wheels: Vec<Dist>,
    #[serde(default)]
    pub metadata: Option<Metadata>,
}

/// Where a package comes from: one of these keys is set.
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Source {
    pub registry: Option<String>,
    pub url: Option<String>,
    pub path: Option<String>,
    pub directory: Option<String>,
    pub git: Option<String>,
    pub editable: Option<String>,
    #[serde(rename = "virtual")]
    pub virtual_: Option<String>,
}

impl Source {
    pub fn kind(&self) -> &'static str {
        if self.registry.is_some() {
            "registry"
        } else if self.url.is_some() {
            "url"
        } else if self.path.is_some() {
            "path"
        } else if self.directory.is_some() {
            "directory"
        } else if self.git.is_some() {
            "git"
        } else if self.editable.is_some() {
            "editable"
        } else if self.virtual_.is_some() {
            "virtual"
        } else {
            "unknown"
        }
    }

    /// A source on disk that uv builds (or, for virtual, only reads).
    pub fn is_local_project(&self) -> bool {
        self.virtual_.is_some() || self.editable.is_some() || self.directory.is_some()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dep {
    pub name: String,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub source: Option<Source>,
    #[serde(default)]
    pub marker: Option<String>,
    #[serde(default)]
    pub extra: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Dist {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub hash: Option<String>,
}

impl Dist {
    pub fn filename(&self) -> Option<String> {
        if let Some(f) = &self.filename {
            return Some(f.clone());
        }
        self.url
            .as_deref()
            .or(self.path.as_deref())
            .map(tags::filename_of)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Metadata {
    #[serde(default)]
    pub requires_dist: Vec<MetaReq>,
    #[serde(default)]
    pub provides_extras: Vec<String>,
    #[serde(default)]
    pub requires_dev: IndexMap<String, Vec<MetaReq>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MetaReq {
    pub name: String,
    #[serde(default)]
    pub specifier: Option<String>,
    #[serde(default)]
    pub marker: Option<String>,
}

/// Parse uv.lock text; errors carry `file:line:col`; an unknown lock version is an error.
pub fn parse(file: &str, text: &str) -> Result<Lock> {
    let lock: Lock = toml_edit::de::from_str(text).map_err(|e| {
        let msg = e.message().trim().to_string();
        match e.span() {
            Some(span) => {
                let (line, col) = line_col(text, span.start);
                error::usage(format!("{file}:{line}:{col}: {msg}"))
            }
            None => error::usage(format!("{file}: {msg}")),
        }
    })?;
    if lock.version != 1 {
        return Err(error::usage(format!(
            "{file}: lock version {} is not supported (this tool reads uv's version 1 locks; update cargo xtask or re-lock with a matching uv)",
            lock.version
        )));
    }
    Ok(lock)
}

/// A project's uv.lock read against its pyproject.toml: where audit, requirements and
/// validate start.
pub struct Project {
    pub lock_path: camino::Utf8PathBuf,
    pub lock: Lock,
    pub reqs: crate::pyproject::Requirements,
    /// Index of the project's own package in `lock.package`.
    pub root: usize,
}

impl Project {
    /// Read both files; a missing lock, a malformed one, or a lock of another project is
    /// one usage error naming the file and what to do.
    pub fn load(dir: &camino::Utf8Path) -> Result<Project> {
        let lock_path = dir.join("uv.lock");
        let text = std::fs::read_to_string(&lock_path).map_err(|e| {
            error::usage(format!(
                "{lock_path}: cannot read: {e} (run `cargo xtask lock` in {dir}, after `cargo xtask port` for a multi-platform lock)"
            ))
        })?;
        let py_path = dir.join("pyproject.toml");
        let py_text = std::fs::read_to_string(&py_path)
            .map_err(|e| error::usage(format!("{py_path}: cannot read: {e}")))?;
        Project::from_texts(lock_path, &text, py_path.as_str(), &py_text)
    }

    /// The same from the two files' texts.
    pub fn from_texts(
        lock_path: camino::Utf8PathBuf,
        text: &str,
        py_path: &str,
        py_text: &str,
    ) -> Result<Project> {
        let lock = parse(lock_path.as_str(), text)?;
        let reqs = crate::pyproject::requirements(&crate::pyproject::parse(py_path, py_text)?);
        let root = lock.root(reqs.name.as_deref()).ok_or_else(|| {
            error::usage(format!(
                "{lock_path}: no package for the project {:?} (the lock belongs to another project; run `cargo xtask lock`)",
                reqs.name.as_deref().unwrap_or("?")
            ))
        })?;
        let root = lock
            .package
            .iter()
            .position(|p| std::ptr::eq(p, root))
            .expect("root is in the lock");
        Ok(Project {
            lock_path,
            lock,
            reqs,
            root,
        })
    }

    pub fn root(&self) -> &Package {
        &self.lock.package[self.root]
    }

    /// The lowest Python `X.Y` the lock's requires-python allows.
    pub fn python(&self) -> Result<(u32, u32)> {
        self.lock
            .requires_python
            .as_deref()
            .and_then(python_of)
            .ok_or_else(|| {
                error::usage(format!(
                    "{}: requires-python gives no lowest Python version",
                    self.lock_path
                ))
            })
    }

    /// Why the lock no longer matches pyproject.toml (empty when it does).
    pub fn stale(&self) -> Vec<String> {
        stale_reasons(&self.lock, self.root(), &self.reqs)
    }

    pub fn walk(&self, env: &MarkerEnvironment, sel: &Selection) -> Result<Walk> {
        self.lock.walk(self.root(), env, sel)
    }
}

/// What to install, as `uv sync` flags say it.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub extras: Vec<String>,
    pub all_extras: bool,
    pub groups: Vec<String>,
    pub all_groups: bool,
    pub no_dev: bool,
    /// `[tool.uv] default-groups` from pyproject (uv's default: ["dev"]).
    pub default_groups: Option<Vec<String>>,
}

/// The result of walking the graph for one target, as indexes into `Lock::package`.
pub struct Walk {
    pub reached: Vec<usize>,
    /// Packages some edge pointed to, whose markers exclude them on this target.
    pub excluded: Vec<usize>,
}

impl Lock {
    /// The project's own package: the one named `project` (normalised), else the one
    /// whose source is the project folder (`.`).
    pub fn root(&self, project: Option<&str>) -> Option<&Package> {
        if let Some(name) = project {
            let n = policy::normalize(name);
            if let Some(p) = self
                .package
                .iter()
                .find(|p| policy::normalize(&p.name) == n)
            {
                return Some(p);
            }
        }
        self.package.iter().find(|p| {
            let s = &p.source;
            [&s.virtual_, &s.editable, &s.directory]
                .iter()
                .any(|v| v.as_deref() == Some("."))
        })
    }

    /// Walk from `root` for a target environment.
    pub fn walk<'a>(
        &'a self,
        root: &'a Package,
        env: &MarkerEnvironment,
        sel: &Selection,
    ) -> Result<Walk> {
        let by_name = self.by_name();
        let mut reached: Vec<usize> = Vec::new();
        let mut seen_pkg: HashSet<usize> = HashSet::new();
        let mut seen_extra: HashSet<(usize, String)> = HashSet::new();
        let mut excluded: BTreeSet<usize> = BTreeSet::new();
        let mut queue: Vec<(&Dep, Option<&str>)> = Vec::new();

        // The root's own edges.
        for d in &root.dependencies {
            queue.push((d, None));
        }
        let extras: Vec<&String> = if sel.all_extras {
            root.optional_dependencies.keys().collect()
        } else {
            sel.extras.iter().collect()
        };
        for e in extras {
            let Some(deps) = root.optional_dependencies.get(e) else {
                return Err(error::usage(format!(
                    "--extra {e}: the project has no such extra (it has: {})",
                    join_keys(&root.optional_dependencies)
                )));
            };
            queue.extend(deps.iter().map(|d| (d, None)));
        }
        for g in self.groups(root, sel)? {
            queue.extend(root.dev_dependencies[&g].iter().map(|d| (d, None)));
        }

        let marker_cache = &mut BTreeMap::<&str, MarkerTree>::new();
        while let Some((dep, _)) = queue.pop() {
            let holds = match dep.marker.as_deref() {
                None => true,
                Some(m) => {
                    let tree = match marker_cache.get(m) {
                        Some(t) => t.clone(),
                        None => {
                            let t = pep::marker(m).map_err(|e| {
                                crate::error::usage(format!(
                                    "uv.lock: marker {m:?}: {e:#} (re-create the lock with `cargo xtask lock`)"
                                ))
                            })?;
                            marker_cache.insert(m, t.clone());
                            t
                        }
                    };
                    pep::evaluate(&tree, env, None)
                }
            };
            let candidates = by_name
                .get(policy::normalize(&dep.name).as_str())
                .cloned()
                .unwrap_or_default();
            let chosen = self.choose(&candidates, dep, env, marker_cache)?;
            if !holds {
                excluded.extend(candidates.iter().copied());
                continue;
            }
            let Some(idx) = chosen else {
                return Err(error::usage(format!(
                    "uv.lock: {} depends on {}, which the lock does not hold for this platform; re-run `cargo xtask lock`",
                    root.name, dep.name
                )));
            };
            let pkg = &self.package[idx];
            if seen_pkg.insert(idx) {
                reached.push(idx);
                queue.extend(pkg.dependencies.iter().map(|d| (d, None)));
            }
            for e in &dep.extra {
                if seen_extra.insert((idx, e.clone()))
                    && let Some(deps) = pkg.optional_dependencies.get(e)
                {
                    queue.extend(deps.iter().map(|d| (d, None)));
                }
            }
        }
        let reached_set: HashSet<usize> = reached.iter().copied().collect();
        let root_idx = self.package.iter().position(|p| std::ptr::eq(p, root));
        Ok(Walk {
            reached: reached
                .into_iter()
                .filter(|i| Some(*i) != root_idx)
                .collect(),
            excluded: excluded
                .into_iter()
                .filter(|i| !reached_set.contains(i) && Some(*i) != root_idx)
                .collect(),
        })
    }

    /// The dependency groups `uv sync` would install with these flags.
    fn groups(&self, root: &Package, sel: &Selection) -> Result<Vec<String>> {
        let mut out: Vec<String> = Vec::new();
        if sel.all_groups {
            out.extend(root.dev_dependencies.keys().cloned());
        } else {
            if !sel.no_dev {
                let defaults = sel
                    .default_groups
                    .clone()
                    .unwrap_or_else(|| vec!["dev".to_string()]);
                out.extend(
                    defaults
                        .into_iter()
                        .filter(|g| root.dev_dependencies.contains_key(g)),
                );
            }
            for g in &sel.groups {
                if !root.dev_dependencies.contains_key(g) {
                    return Err(error::usage(format!(
                        "--group {g}: the project has no such dependency group (it has: {})",
                        join_keys(&root.dev_dependencies)
                    )));
                }
                if !out.contains(g) {
                    out.push(g.clone());
                }
            }
        }
        if sel.no_dev {
            out.retain(|g| g != "dev");
        }
        Ok(out)
    }

    fn by_name(&self) -> BTreeMap<String, Vec<usize>> {
        let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, p) in self.package.iter().enumerate() {
            m.entry(policy::normalize(&p.name)).or_default().push(i);
        }
        m
    }

    /// Which of the packages named by an edge it means: by version/source when the edge
    /// says, else by the package's resolution markers for this environment.
    fn choose<'m>(
        &'m self,
        candidates: &[usize],
        dep: &Dep,
        env: &MarkerEnvironment,
        cache: &mut BTreeMap<&'m str, MarkerTree>,
    ) -> Result<Option<usize>> {
        let mut pool: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| {
                let p = &self.package[i];
                dep.version
                    .as_ref()
                    .is_none_or(|v| p.version.as_ref() == Some(v))
                    && dep.source.as_ref().is_none_or(|s| &p.source == s)
            })
            .collect();
        if pool.len() > 1 {
            let mut fitting = Vec::new();
            for &i in &pool {
                let p = &self.package[i];
                let mut any = p.resolution_markers.is_empty();
                for m in &p.resolution_markers {
                    let tree = match cache.get(m.as_str()) {
                        Some(t) => t.clone(),
                        None => {
                            let t = pep::marker(m).map_err(|e| {
                                crate::error::usage(format!(
                                    "uv.lock: resolution marker {m:?}: {e:#} (re-create the lock with `cargo xtask lock`)"
                                ))
                            })?;
                            cache.insert(m.as_str(), t.clone());
                            t
                        }
                    };
                    if pep::evaluate(&tree, env, None) {
                        any = true;
                        break;
                    }
                }
                if any {
                    fitting.push(i);
                }
            }
            pool = fitting;
        }
        Ok(pool.first().copied())
    }
}

/// Why the lock no longer matches pyproject.toml, compared with the root package's
/// `[package.metadata]` (file times mean nothing after a clone). Empty when it matches.
pub fn stale_reasons(
    lock: &Lock,
    root: &Package,
    project: &crate::pyproject::Requirements,
) -> Vec<String> {
    let mut out = Vec::new();
    let norm_spec = |s: &str| {
        pep::specifiers(s)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| s.to_string())
    };
    match (&project.requires_python, &lock.requires_python) {
        (Some(p), Some(l)) if norm_spec(p) != norm_spec(l) => out.push(format!(
            "requires-python is {p:?} in pyproject.toml but {l:?} in uv.lock"
        )),
        _ => {}
    }
    let Some(meta) = &root.metadata else {
        return out;
    };
    // Each side as: name -> (union of markers, set of specifiers).
    type Side = BTreeMap<String, (MarkerTree, BTreeSet<String>)>;
    fn add(side: &mut Side, name: &str, marker: MarkerTree, spec: Option<String>) {
        let e = side
            .entry(policy::normalize(name))
            .or_insert_with(|| (MarkerTree::FALSE, BTreeSet::new()));
        e.0.or(marker);
        if let Some(s) = spec.filter(|s| !s.is_empty()) {
            e.1.insert(s);
        }
    }
    let from_pyproject = |reqs: &[String], extra: Option<&str>| -> Side {
        let mut side = Side::new();
        for r in reqs {
            let Ok(req) = pep::requirement(r) else {
                continue;
            };
            let mut m = req.marker.clone();
            if let Some(e) = extra
                && let Ok(x) = pep::marker(&format!("extra == '{e}'"))
            {
                m.and(x);
            }
            let spec = match &req.version_or_url {
                Some(pep508_rs::VersionOrUrl::VersionSpecifier(v)) => Some(v.to_string()),
                _ => None,
            };
            add(&mut side, req.name.as_ref(), m, spec);
        }
        side
    };
    let from_lock = |reqs: &[MetaReq]| -> Side {
        let mut side = Side::new();
        for r in reqs {
            let m = r
                .marker
                .as_deref()
                .map_or(Ok(MarkerTree::TRUE), pep::marker)
                .unwrap_or(MarkerTree::TRUE);
            add(&mut side, &r.name, m, r.specifier.as_deref().map(norm_spec));
        }
        side
    };
    let mut want = from_pyproject(&project.dependencies, None);
    for (extra, reqs) in &project.optional {
        for (k, (m, s)) in from_pyproject(reqs, Some(extra)) {
            let e = want
                .entry(k)
                .or_insert_with(|| (MarkerTree::FALSE, BTreeSet::new()));
            e.0.or(m);
            e.1.extend(s);
        }
    }
    let have = from_lock(&meta.requires_dist);
    diff_sides("dependencies", &want, &have, &mut out);
    let extras_want: BTreeSet<String> = project
        .optional
        .keys()
        .map(|k| policy::normalize(k))
        .collect();
    let extras_have: BTreeSet<String> = meta
        .provides_extras
        .iter()
        .map(|k| policy::normalize(k))
        .collect();
    if extras_want != extras_have {
        out.push(format!(
            "extras differ: pyproject.toml has [{}], uv.lock has [{}]",
            extras_want.into_iter().collect::<Vec<_>>().join(", "),
            extras_have.into_iter().collect::<Vec<_>>().join(", ")
        ));
    }
    let groups_want: BTreeSet<&String> = project.groups.keys().collect();
    let groups_have: BTreeSet<&String> = meta.requires_dev.keys().collect();
    if groups_want != groups_have {
        out.push(format!(
            "dependency groups differ: pyproject.toml has [{}], uv.lock has [{}]",
            groups_want
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", "),
            groups_have
                .into_iter()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        ));
    } else {
        for (g, reqs) in &project.groups {
            let want = from_pyproject(reqs, None);
            let have = from_lock(&meta.requires_dev[g]);
            diff_sides(&format!("dependency group {g}"), &want, &have, &mut out);
        }
    }
    out
}

fn diff_sides(
    what: &str,
    want: &BTreeMap<String, (MarkerTree, BTreeSet<String>)>,
    have: &BTreeMap<String, (MarkerTree, BTreeSet<String>)>,
    out: &mut Vec<String>,
) {
    let mut names: Vec<String> = Vec::new();
    for (k, (m, s)) in want {
        match have.get(k) {
            None => names.push(format!("{k} (not in the lock)")),
            Some((hm, hs)) if hm != m || (!s.is_empty() && hs != s) => names.push(k.clone()),
            _ => {}
        }
    }
    for k in have.keys().filter(|k| !want.contains_key(*k)) {
        names.push(format!("{k} (only in the lock)"));
    }
    if !names.is_empty() {
        out.push(format!(
            "{what} changed since the lock was made: {}",
            names.join(", ")
        ));
    }
}

fn join_keys<V>(m: &IndexMap<String, V>) -> String {
    if m.is_empty() {
        "none".into()
    } else {
        m.keys().cloned().collect::<Vec<_>>().join(", ")
    }
}

/// The lowest Python `X.Y` a requires-python allows ("==3.12.*" → 3.12).
pub fn python_of(requires: &str) -> Option<(u32, u32)> {
    let specs = pep::specifiers(requires).ok()?;
    let mut best: Option<(u32, u32)> = None;
    for s in specs.iter() {
        use pep508_rs::pep440_rs::Operator::*;
        let r = s.version().release();
        let v = (*r.first()? as u32, *r.get(1).unwrap_or(&0) as u32);
        match s.operator() {
            Equal | EqualStar | ExactEqual | TildeEqual | GreaterThanEqual => {
                best = best.max(Some(v))
            }
            GreaterThan => best = best.max(Some((v.0, v.1 + 1))),
            _ => {}
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_versions() {
        assert_eq!(python_of("==3.12.*"), Some((3, 12)));
        assert_eq!(python_of(">=3.10, <3.13"), Some((3, 10)));
        assert_eq!(python_of("==3.10.*"), Some((3, 10)));
        assert_eq!(python_of("<4"), None);
    }

    #[test]
    fn unknown_version_and_syntax_errors() {
        let e = parse("uv.lock", "version = 2\n").unwrap_err();
        assert!(
            format!("{e}").contains("lock version 2 is not supported"),
            "{e}"
        );
        let e = parse("uv.lock", "version = 1\n[[package]\nname = 'x'\n").unwrap_err();
        assert!(format!("{e}").starts_with("uv.lock:2:"), "{e}");
    }
}
