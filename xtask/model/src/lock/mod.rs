//! A typed model of uv.lock (lock `version = 1`) and a walk of its graph for one target,
//! the way `uv sync` would choose packages: root dependencies, requested extras and
//! dependency groups, markers evaluated for the target, forks chosen by resolution
//! markers.

pub mod audit;
pub mod export;
pub mod select;
mod stale;
pub mod tags;

pub use select::{Chosen, Selection};
pub use stale::{ensure_fresh, stale_reasons};

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use anyhow::Result;
use indexmap::IndexMap;
use pep508_rs::{ExtraName, MarkerEnvironment, MarkerTree};
use serde::Deserialize;

use crate::error;
use crate::names;
use crate::pep;

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
    /// Declared conflicts, as uv recorded them (their items appear in edge markers).
    #[serde(default)]
    pub conflicts: Vec<Vec<ConflictEntry>>,
    #[serde(default)]
    pub package: Vec<Package>,
}

/// One item of a conflict set in uv.lock.
#[derive(Debug, Deserialize)]
pub struct ConflictEntry {
    #[serde(default)]
    pub package: Option<String>,
    #[serde(default)]
    pub extra: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
}

impl ConflictEntry {
    fn item(&self) -> Option<select::Item> {
        let package = names::normalize(self.package.as_deref()?);
        Some(match (&self.extra, &self.group) {
            (Some(e), _) => select::Item::Extra(package, names::normalize(e)),
            (None, Some(g)) => select::Item::Group(package, names::normalize(g)),
            (None, None) => select::Item::Project(package),
        })
    }
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

/// Where a package comes from (uv writes one of these keys; keys beside it, as a
/// git source's `subdirectory`, are not read).
#[derive(Debug, Default, Clone, PartialEq, Eq, Deserialize)]
#[serde(from = "RawSource")]
pub enum Source {
    /// An index, by its URL.
    Registry(String),
    /// A wheel or source archive at a URL.
    Url(String),
    /// A wheel or archive on disk.
    Path(String),
    /// A project folder, installed as a package.
    Directory(String),
    Git(String),
    Editable(String),
    /// A project folder that is not itself installed (uv's virtual root).
    Virtual(String),
    /// No source key (an old or hand-edited lock).
    #[default]
    Unknown,
}

/// A lock's `source` table as written, before it is one [`Source`].
#[derive(Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawSource {
    registry: Option<String>,
    url: Option<String>,
    path: Option<String>,
    directory: Option<String>,
    git: Option<String>,
    editable: Option<String>,
    #[serde(rename = "virtual")]
    virtual_: Option<String>,
}

impl From<RawSource> for Source {
    fn from(r: RawSource) -> Source {
        let found = [
            r.registry.map(Source::Registry),
            r.url.map(Source::Url),
            r.path.map(Source::Path),
            r.directory.map(Source::Directory),
            r.git.map(Source::Git),
            r.editable.map(Source::Editable),
            r.virtual_.map(Source::Virtual),
        ];
        found.into_iter().flatten().next().unwrap_or_default()
    }
}

impl Source {
    /// The key the lock gave it (`registry`, `git`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Source::Registry(_) => "registry",
            Source::Url(_) => "url",
            Source::Path(_) => "path",
            Source::Directory(_) => "directory",
            Source::Git(_) => "git",
            Source::Editable(_) => "editable",
            Source::Virtual(_) => "virtual",
            Source::Unknown => "unknown",
        }
    }

    /// The index's URL, for a package from one.
    pub fn registry(&self) -> Option<&str> {
        match self {
            Source::Registry(r) => Some(r),
            _ => None,
        }
    }

    /// A source on disk that uv builds (or, for virtual, only reads).
    pub fn is_local_project(&self) -> bool {
        matches!(
            self,
            Source::Virtual(_) | Source::Editable(_) | Source::Directory(_)
        )
    }

    /// The folder of a local project (and a path source's file).
    pub fn local_at(&self) -> Option<&str> {
        match self {
            Source::Editable(at)
            | Source::Directory(at)
            | Source::Path(at)
            | Source::Virtual(at) => Some(at),
            _ => None,
        }
    }

    /// The project folder the lock was made in (`.`), in any of its local forms.
    pub fn is_the_project(&self) -> bool {
        self.is_local_project() && self.local_at() == Some(".")
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
    let lock: Lock = toml::from_str(text)
        .map_err(|e| error::usage(names::toml_error(file, text, e.span(), e.message())))?;
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
    /// `[tool.uv] conflicts` of pyproject.toml.
    pub conflicts: Vec<Vec<select::Item>>,
}

impl Project {
    /// torch as locked for a target, with the CUDA version its wheel is built for
    /// (`2.8.0+cu128` → `12.8`); None without torch or a `+cu` local version.
    pub fn torch_cuda(&self, t: &crate::policy::Target) -> Option<(String, String)> {
        let (major, minor) = self.python().ok()?;
        let env = t.env_at(&format!("{major}.{minor}")).ok()?;
        let walk = self.walk(&env, &Selection::default()).ok()?;
        let torch = walk
            .reached
            .iter()
            .map(|&i| &self.lock.package[i])
            .find(|p| p.name == "torch")?;
        let version = torch.version.clone()?;
        let cuda = cuda_of_local(&version)?;
        Some((version, cuda))
    }

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
        let doc = crate::pyproject::parse(py_path, py_text)?;
        let reqs = crate::pyproject::requirements(&doc);
        let mut conflicts = select::conflicts_of(&doc, reqs.name.as_deref().unwrap_or_default());
        if conflicts.is_empty() {
            // Conflicts declared elsewhere in a workspace reach the lock only.
            conflicts = lock
                .conflicts
                .iter()
                .map(|set| set.iter().filter_map(ConflictEntry::item).collect())
                .collect();
        }
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
            conflicts,
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

    /// A usage error when the lock no longer matches pyproject.toml.
    pub fn ensure_fresh(&self) -> Result<()> {
        ensure_fresh(self.lock_path.as_str(), &self.lock, self.root(), &self.reqs)
    }

    /// The flags applied to this project (refused as uv refuses them).
    pub fn choose(&self, sel: &Selection) -> Result<Chosen> {
        sel.choose(self.root(), &self.conflicts)
    }

    pub fn walk(&self, env: &MarkerEnvironment, sel: &Selection) -> Result<Walk> {
        let chosen = self.choose(sel)?;
        self.lock.walk(self.root(), env, &chosen)
    }
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
        if let Some(name) = project
            && let Some(p) = self.package.iter().find(|p| names::same(&p.name, name))
        {
            return Some(p);
        }
        self.package.iter().find(|p| p.source.is_the_project())
    }

    /// Walk from `root` for a target environment, as `uv sync` does: the project's
    /// dependencies and extras (unless only groups were asked for), its groups, then
    /// every edge whose marker holds. Markers may name conflict items (`extra ==
    /// 'extra-4-demo-cpu'`); those hold when the choice or an edge's `pkg[extra]`
    /// activates the item, so with declared conflicts a first pass gathers every
    /// activated extra before the walk that counts.
    pub fn walk(&self, root: &Package, env: &MarkerEnvironment, chosen: &Chosen) -> Result<Walk> {
        let mut seeds: Vec<&Dep> = Vec::new();
        if chosen.prod {
            seeds.extend(&root.dependencies);
            for e in &chosen.extras {
                seeds.extend(named(&root.optional_dependencies, e).into_iter().flatten());
            }
        }
        let mut active: Vec<ExtraName> = select::activated(&root.name, chosen)
            .iter()
            .filter_map(|e| e.parse().ok())
            .collect();
        let mut cache = BTreeMap::<String, MarkerTree>::new();
        // Group edges are judged with the choice's own items, as uv does.
        for g in &chosen.groups {
            for d in named(&root.dev_dependencies, g).into_iter().flatten() {
                if self.holds(d, env, &active, &mut cache)? {
                    seeds.push(d);
                }
            }
        }
        if !self.conflicts.is_empty() {
            self.traverse(root, &seeds, env, &mut active, true, &mut cache)?;
        }
        let (reached, excluded) =
            self.traverse(root, &seeds, env, &mut active, false, &mut cache)?;
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

    /// Whether an edge's marker holds in `env` with these conflict items active.
    fn holds(
        &self,
        dep: &Dep,
        env: &MarkerEnvironment,
        active: &[ExtraName],
        cache: &mut BTreeMap<String, MarkerTree>,
    ) -> Result<bool> {
        let Some(m) = dep.marker.as_deref() else {
            return Ok(true);
        };
        Ok(cached_marker(m, "marker", cache)?.evaluate(env, active))
    }

    /// Breadth first from `seeds`; `gather` adds the extras that followed edges
    /// activate to `active` (uv's first pass). The packages reached, and those some
    /// edge pointed to whose markers left them out.
    fn traverse<'a>(
        &'a self,
        root: &'a Package,
        seeds: &[&'a Dep],
        env: &MarkerEnvironment,
        active: &mut Vec<ExtraName>,
        gather: bool,
        cache: &mut BTreeMap<String, MarkerTree>,
    ) -> Result<(Vec<usize>, BTreeSet<usize>)> {
        let by_name = self.by_name();
        let mut reached: Vec<usize> = Vec::new();
        let mut seen_pkg: HashSet<usize> = HashSet::new();
        let mut seen_extra: HashSet<(usize, String)> = HashSet::new();
        let mut excluded: BTreeSet<usize> = BTreeSet::new();
        let mut queue: VecDeque<&Dep> = seeds.iter().copied().collect();
        while let Some(dep) = queue.pop_front() {
            let name = names::normalize(&dep.name);
            let mut more: Vec<ExtraName> = Vec::new();
            if gather {
                for e in &dep.extra {
                    let item = select::Item::Extra(name.clone(), names::normalize(e)).encoded();
                    if let Ok(x) = item.parse::<ExtraName>()
                        && !active.contains(&x)
                    {
                        more.push(x);
                    }
                }
            }
            let holds = if more.is_empty() {
                self.holds(dep, env, active, cache)?
            } else {
                let with: Vec<ExtraName> = active.iter().chain(&more).cloned().collect();
                self.holds(dep, env, &with, cache)?
            };
            let candidates = by_name.get(name.as_str()).cloned().unwrap_or_default();
            if !holds {
                excluded.extend(candidates.iter().copied());
                continue;
            }
            active.extend(more);
            let Some(idx) = self.choose(&candidates, dep, env, active, cache)? else {
                return Err(error::usage(format!(
                    "uv.lock: {} depends on {}, which the lock does not hold for this platform; re-run `cargo xtask lock`",
                    root.name, dep.name
                )));
            };
            let pkg = &self.package[idx];
            if seen_pkg.insert(idx) {
                reached.push(idx);
                queue.extend(pkg.dependencies.iter());
            }
            for e in &dep.extra {
                if seen_extra.insert((idx, names::normalize(e))) {
                    queue.extend(named(&pkg.optional_dependencies, e).into_iter().flatten());
                }
            }
        }
        Ok((reached, excluded))
    }

    fn by_name(&self) -> BTreeMap<String, Vec<usize>> {
        let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, p) in self.package.iter().enumerate() {
            m.entry(names::normalize(&p.name)).or_default().push(i);
        }
        m
    }

    /// Which of the packages named by an edge it means: by version/source when the edge
    /// says, else by the package's resolution markers for this environment.
    fn choose(
        &self,
        candidates: &[usize],
        dep: &Dep,
        env: &MarkerEnvironment,
        active: &[ExtraName],
        cache: &mut BTreeMap<String, MarkerTree>,
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
                    if cached_marker(m, "resolution marker", cache)?.evaluate(env, active) {
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

/// The list under `key` in a table of extras or groups, names compared normalised.
fn named<'a>(table: &'a IndexMap<String, Vec<Dep>>, key: &str) -> Option<&'a Vec<Dep>> {
    table
        .iter()
        .find(|(k, _)| names::same(k, key))
        .map(|(_, v)| v)
}

/// A lock marker parsed once.
fn cached_marker(
    m: &str,
    what: &str,
    cache: &mut BTreeMap<String, MarkerTree>,
) -> Result<MarkerTree> {
    if let Some(t) = cache.get(m) {
        return Ok(t.clone());
    }
    let t = pep::marker(m).map_err(|e| {
        error::usage(format!(
            "uv.lock: {what} {m:?}: {e:#} (re-create the lock with `cargo xtask lock`)"
        ))
    })?;
    cache.insert(m.to_string(), t.clone());
    Ok(t)
}

/// The CUDA version a `+cuNNN` local version names (`cu128` → `12.8`, `cu130` → `13.0`).
pub fn cuda_of_local(version: &str) -> Option<String> {
    let cu = version.split_once("+cu")?.1;
    if cu.len() < 2 || !cu.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (major, minor) = cu.split_at(cu.len() - 1);
    Some(format!("{major}.{minor}"))
}

/// Whether some Python `X.Y.z` satisfies `requires` (an unreadable one allows all).
pub fn python_allowed(requires: &str, (major, minor): (u32, u32)) -> bool {
    let Ok(specs) = pep::specifiers(requires) else {
        return true;
    };
    [0, 999].iter().any(|patch| {
        pep::version(&format!("{major}.{minor}.{patch}"))
            .map(|v| specs.contains(&v))
            .unwrap_or(true)
    })
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
            GreaterThan => best = best.max(Some(v)),
            _ => {}
        }
    }
    // The lower bound's X.Y, or the next that some X.Y.z of satisfies everything
    // (">3.10": 3.10.1 does, so 3.10).
    let (major, minor) = best?;
    (minor..minor + 3)
        .map(|m| (major, m))
        .find(|&p| python_allowed(requires, p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_source_is_the_one_key_uv_wrote() {
        let lock = parse(
            "uv.lock",
            "version = 1\nrevision = 3\n\n[[package]]\nname = \"a\"\nsource = { git = \"https://git.invalid/a?subdirectory=x#0f\", subdirectory = \"x\" }\n\n[[package]]\nname = \"b\"\nsource = { editable = \".\" }\n\n[[package]]\nname = \"c\"\n",
        )
        .unwrap();
        let kinds: Vec<&str> = lock.package.iter().map(|p| p.source.kind()).collect();
        assert_eq!(kinds, ["git", "editable", "unknown"]);
        assert!(lock.package[1].source.is_the_project());
        assert_eq!(lock.package[1].source.local_at(), Some("."));
        assert!(!lock.package[0].source.is_local_project());
        assert_eq!(lock.package[0].source.registry(), None);
    }

    #[test]
    fn cuda_versions_come_from_local_versions() {
        assert_eq!(cuda_of_local("2.8.0+cu128").as_deref(), Some("12.8"));
        assert_eq!(cuda_of_local("2.9.0+cu130").as_deref(), Some("13.0"));
        assert_eq!(cuda_of_local("2.8.0"), None);
        assert_eq!(cuda_of_local("2.8.0+cpu"), None);
        assert_eq!(cuda_of_local("2.8.0+cu"), None);
    }

    #[test]
    fn staleness_reads_pyproject_as_uv_records_it() {
        // A lock as uv 0.13 writes it for this pyproject: groups normalised and
        // include-group expanded, legacy dev-dependencies in `dev`, platform_system
        // written as sys_platform, requires-python kept as another spelling.
        let py = r#"
[project]
name = "demo"
version = "0.1.0"
requires-python = ">=3.12,<3.13"
dependencies = ["bitsandbytes; platform_system != 'Darwin'"]
[dependency-groups]
batch_invariant = ["tabulate"]
docs = [{ include-group = "lint" }, "markdown"]
lint = ["ruff"]
[tool.uv]
dev-dependencies = ["pytest"]
"#;
        let lock = r#"
version = 1
requires-python = "==3.12.*"
[[package]]
name = "demo"
version = "0.1.0"
source = { virtual = "." }
[package.metadata]
requires-dist = [{ name = "bitsandbytes", marker = "sys_platform != 'darwin'" }]
[package.metadata.requires-dev]
batch-invariant = [{ name = "tabulate" }]
dev = [{ name = "pytest" }]
docs = [{ name = "markdown" }, { name = "ruff" }]
lint = [{ name = "ruff" }]
"#;
        let p = Project::from_texts("uv.lock".into(), lock, "pyproject.toml", py).unwrap();
        assert!(p.stale().is_empty(), "{:?}", p.stale());
        // And a real change is still one.
        let changed = py.replace("\"markdown\"", "\"markdown>=3\"");
        let p = Project::from_texts("uv.lock".into(), lock, "pyproject.toml", &changed).unwrap();
        assert_eq!(
            p.stale(),
            ["dependency group docs changed since the lock was made: markdown"]
        );
    }

    #[test]
    fn python_outside_requires_python() {
        assert!(!python_allowed(">=3.11", (3, 10)));
        assert!(python_allowed(">=3.11.4", (3, 11)));
        assert!(!python_allowed(">=3.10,<3.13", (3, 13)));
        assert!(python_allowed("==3.12.*", (3, 12)));
    }

    #[test]
    fn python_versions() {
        assert_eq!(python_of("==3.12.*"), Some((3, 12)));
        assert_eq!(python_of(">=3.10, <3.13"), Some((3, 10)));
        assert_eq!(python_of("==3.10.*"), Some((3, 10)));
        assert_eq!(python_of("<4"), None);
        // 3.10.1 satisfies >3.10; nothing of 3.10 satisfies >=3.10, !=3.10.*.
        assert_eq!(python_of(">3.10"), Some((3, 10)));
        assert_eq!(python_of(">=3.10, !=3.10.*"), Some((3, 11)));
        assert_eq!(python_of("~=3.11.2"), Some((3, 11)));
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
