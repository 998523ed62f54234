//! templates/platforms.toml parsed into types and checked: the single source of truth
//! for targets, indexes, per-package support, dependency groups and pytest markers.

use anyhow::{Context, Result, bail};
use camino::Utf8Path;
use indexmap::IndexMap;
use pep508_rs::{MarkerEnvironment, MarkerTree, Requirement};
use serde::{Deserialize, Serialize};

use crate::error;
use crate::names::{self, Arch, Os, normalize};
use crate::pep;

/// Where the policy lives relative to the workspace root.
pub const DEFAULT_PATH: &str = "templates/platforms.toml";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct File {
    python: PythonPolicy,
    indexes: IndexMap<String, Index>,
    torch: TorchPolicy,
    targets: IndexMap<String, Target>,
    #[serde(default)]
    packages: Vec<RuleFile>,
    #[serde(default)]
    groups: IndexMap<String, Vec<String>>,
    pytest: PytestPolicy,
    uv: UvPolicy,
    app: AppPolicy,
    #[serde(default)]
    workflow: WorkflowPolicy,
    #[serde(default)]
    imports: IndexMap<String, Vec<String>>,
    #[serde(default)]
    gpus: Vec<GpuFile>,
    #[serde(default)]
    gpu_families: IndexMap<String, String>,
}

/// `[[gpus]]` as written: a GPU users name, with its compute capability.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct GpuFile {
    name: String,
    cc: String,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    hosts: Vec<String>,
    only: Option<String>,
}

/// `[[torch.builds]]` as written: the GPU code of torch's CUDA builds.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct BuildFile {
    versions: String,
    cuda: String,
    arch: String,
    arch_list: String,
    source: String,
}

/// One fact: torch releases in `versions`, built for CUDA `cuda` on `arch`, carry the GPU
/// code of `list` (read from PyTorch's build scripts, or from a wheel; `source` says).
#[derive(Debug, Clone)]
pub struct BuildFact {
    pub versions: pep508_rs::pep440_rs::VersionSpecifiers,
    pub versions_text: String,
    pub cuda: String,
    pub arch: Arch,
    /// As written (`7.0;7.5;8.0;8.6;9.0;10.0;12.0+PTX`).
    pub arch_list: String,
    pub list: crate::gpu::ArchList,
    pub source: String,
}

/// `[[torch.companions]]`: a package built with torch, whose release pairs with torch's
/// (torch 2.N with torchvision 0.(N+15) and torchaudio 2.N).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Companion {
    pub name: String,
    /// The companion's major version; absent: torch's own.
    pub major: Option<u64>,
    /// Its minor version is torch's plus this.
    #[serde(default)]
    pub minor_offset: u64,
    /// The torch releases the pairing holds for.
    pub torch: Option<String>,
}

/// `[workflow]`: what `cargo xtask workflow` writes into the app's CI.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct WorkflowPolicy {
    /// The registry images are pushed to (`ghcr.io`).
    #[serde(default)]
    pub registry: String,
    /// Actions by role (checkout, cache, ...): `owner/repo@<40-hex commit> # vX.Y.Z`.
    #[serde(default)]
    pub actions: IndexMap<String, String>,
    /// Self-hosted GPU runners, each a list of labels, when `--gpu-runner` is not given.
    #[serde(default)]
    pub gpu_runners: Vec<Vec<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct UvPolicy {
    pub version: String,
    pub minimum: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct AppPolicy {
    #[serde(default)]
    pub cuda_extras: Vec<String>,
    pub module: String,
    pub port: u16,
    /// The modules the app starts from: `validate --project` imports each in the
    /// installed environment (`[tool.xtask] entry-modules` in the project overrides).
    #[serde(default)]
    pub entry_modules: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PythonPolicy {
    pub requires_python: String,
    pub version: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Index {
    pub url: String,
    #[serde(default)]
    pub about: String,
    /// The CUDA version of the torch builds it serves (`12.8`).
    pub cuda: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TorchPolicy {
    pub packages: Vec<String>,
    /// `[[torch.sources]]`: which index serves torch on which targets, by torch version.
    #[serde(default)]
    pub sources: Vec<TorchSource>,
    /// `[[torch.builds]]` as written; checked and typed in `Policy::torch_builds`.
    #[serde(default)]
    pub builds: Vec<BuildFile>,
    #[serde(default)]
    pub companions: Vec<Companion>,
}

/// One `[[torch.sources]]` entry: for a torch version in `versions`, these targets take
/// torch from `index`. A target no entry names takes it from the default index (PyPI).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct TorchSource {
    pub versions: Option<String>,
    pub index: String,
    pub targets: Vec<String>,
    #[serde(skip)]
    specifiers: Option<pep508_rs::pep440_rs::VersionSpecifiers>,
}

impl TorchSource {
    /// Whether a torch version falls in this entry's range.
    pub fn holds(&self, v: &pep508_rs::pep440_rs::Version) -> bool {
        self.specifiers.as_ref().is_none_or(|s| s.contains(v))
    }

    pub fn specifiers(&self) -> Option<&pep508_rs::pep440_rs::VersionSpecifiers> {
        self.specifiers.as_ref()
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct RuleFile {
    /// One name or pattern; or `names`, several sharing the rule.
    #[serde(default)]
    name: String,
    #[serde(default)]
    names: Vec<String>,
    versions: Option<String>,
    #[serde(default)]
    targets: Vec<String>,
    marker: Option<String>,
    #[serde(default)]
    never_list: bool,
    build_requires: Option<String>,
    wheels: Option<Vec<String>>,
    reason: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct PytestPolicy {
    pub markers: IndexMap<String, String>,
    #[serde(default)]
    pub gpu: GpuTestsFile,
}

/// `[pytest.gpu]` as written: markers and node-id patterns, each with the backend need.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct GpuTestsFile {
    #[serde(default)]
    markers: IndexMap<String, String>,
    #[serde(default)]
    node_ids: IndexMap<String, Vec<String>>,
}

/// What a GPU test needs: any GPU (CUDA or MPS), CUDA, or MPS; or any device: a test of
/// the GPU path that falls back to the CPU, which level 4 runs on every node, CPU-only
/// ones included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    Gpu,
    Cuda,
    Mps,
    Any,
}

impl Need {
    fn parse(s: &str) -> Option<Need> {
        match s {
            "gpu" => Some(Need::Gpu),
            "cuda" => Some(Need::Cuda),
            "mps" => Some(Need::Mps),
            "any" => Some(Need::Any),
            _ => None,
        }
    }
}

/// How the app's GPU tests are recognised: by marker, and by node-id pattern (fnmatch
/// against pytest's node id without its `[parameters]`) for tests the app does not mark.
#[derive(Debug, Clone, Default)]
pub struct GpuTests {
    pub markers: Vec<(String, Need)>,
    pub node_ids: Vec<(String, Need)>,
}

/// One lock environment: `[targets.NAME]` as written, and the marker environment it
/// evaluates markers in.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Target {
    #[serde(skip_deserializing)]
    pub name: String,
    #[serde(default)]
    pub about: String,
    pub marker: String,
    pub sys_platform: String,
    pub platform_machine: String,
    pub docker_platform: Option<String>,
    pub docker_alias: Option<String>,
    pub uv_platform: String,
    pub glibc: Option<String>,
    pub macos: Option<String>,
    pub pytest_marker: Option<String>,
    pub group: Option<String>,
    /// The hosted CI runner label of machines of this target (`cargo xtask workflow`).
    pub runner: Option<String>,
    /// The accelerator its machines have: `cuda` or `mps` (absent: CPU only).
    pub accelerator: Option<String>,
    /// The GPUs (names from `[[gpus]]`) it promises: `audit` fails a lock whose torch
    /// cannot run one of them.
    #[serde(default)]
    pub gpus: Vec<String>,
    /// The marker environment for the policy's Python version (set when loaded).
    #[serde(skip)]
    env: Option<MarkerEnvironment>,
}

impl Target {
    /// The marker environment for the policy's Python version.
    pub fn env(&self) -> &MarkerEnvironment {
        self.env.as_ref().expect("set when the policy is loaded")
    }

    /// The marker environment of this target under another Python (`X.Y` or `X.Y.Z`).
    pub fn env_at(&self, python: &str) -> Result<MarkerEnvironment> {
        pep::environment(&self.sys_platform, &self.platform_machine, python)
    }

    /// Its operating system (`sys-platform`, checked when the policy is loaded).
    pub fn os(&self) -> Os {
        Os::from_sys_platform(&self.sys_platform).unwrap_or(Os::Other("unknown"))
    }

    /// Its architecture (`platform-machine`).
    pub fn arch(&self) -> Arch {
        Arch::parse(&self.platform_machine)
    }

    /// `sys_platform == 'linux'`: the OS-wide marker used for `environments`.
    pub fn os_marker(&self) -> String {
        format!("sys_platform == '{}'", self.sys_platform)
    }
}

/// The target a host maps to, or none: written `unsupported` in reports and tables, so
/// `None` is the only way to say it in code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub struct HostTarget(Option<String>);

impl HostTarget {
    const UNSUPPORTED: &'static str = "unsupported";

    pub fn new(target: Option<&Target>) -> HostTarget {
        HostTarget(target.map(|t| t.name.clone()))
    }

    /// The target's name; None where the policy has no target for the host.
    pub fn name(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl From<String> for HostTarget {
    fn from(s: String) -> HostTarget {
        HostTarget((s != HostTarget::UNSUPPORTED).then_some(s))
    }
}

impl From<&str> for HostTarget {
    fn from(s: &str) -> HostTarget {
        HostTarget::from(s.to_string())
    }
}

impl From<HostTarget> for String {
    fn from(t: HostTarget) -> String {
        t.0.unwrap_or_else(|| HostTarget::UNSUPPORTED.into())
    }
}

impl std::fmt::Display for HostTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name().unwrap_or(HostTarget::UNSUPPORTED))
    }
}

/// What to do with a package on which targets.
#[derive(Debug, Clone)]
pub struct Rule {
    /// How the rule is shown: its name (or names, joined).
    pub name: String,
    /// The names or patterns (`nvidia-*-cu12`) it applies to.
    pub patterns: Vec<String>,
    pub versions: Option<pep508_rs::pep440_rs::VersionSpecifiers>,
    pub targets: Vec<String>,
    pub marker: Option<String>,
    pub marker_tree: MarkerTree,
    pub never_list: bool,
    /// What building it from source needs (reported by `audit`).
    pub build_requires: Option<String>,
    /// The targets the default index has a wheel for (at each target's floor) in every
    /// release of `versions`: a fact `policy check` holds against the index. None: no
    /// claim; empty: sdist only.
    pub wheels: Option<Vec<String>>,
    pub reason: String,
}

impl Rule {
    /// Whether a (normalised) package name is one of the rule's names or matches one of
    /// its patterns (one `*` standing for any run of characters).
    pub fn matches_name(&self, normalized: &str) -> bool {
        self.patterns.iter().any(|p| match p.split_once('*') {
            Some((prefix, suffix)) => {
                let (prefix, suffix) = (normalize(prefix), normalize(suffix));
                normalized.len() >= prefix.len() + suffix.len()
                    && normalized.starts_with(&prefix)
                    && normalized.ends_with(&suffix)
            }
            None => normalize(p) == normalized,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Policy {
    pub python: PythonPolicy,
    pub indexes: IndexMap<String, Index>,
    pub torch: TorchPolicy,
    pub targets: Vec<Target>,
    pub rules: Vec<Rule>,
    pub groups: IndexMap<String, Vec<String>>,
    pub pytest: PytestPolicy,
    /// `[pytest.gpu]`, checked and typed.
    pub gpu_tests: GpuTests,
    pub uv: UvPolicy,
    pub app: AppPolicy,
    pub workflow: WorkflowPolicy,
    /// `[imports]`: the import names of distributions whose name does not say them
    /// (`pyyaml` → `yaml`), keyed by PEP 503 name; used where no environment says.
    pub imports: IndexMap<String, Vec<String>>,
    /// `[[gpus]]`: the GPUs users name, with their compute capability.
    pub gpus: Vec<crate::gpu::Gpu>,
    /// `[gpu-families]`: compute capability → architecture family (Hopper, Blackwell).
    pub gpu_families: IndexMap<String, String>,
    /// `[[torch.builds]]`, checked.
    pub torch_builds: Vec<BuildFact>,
    /// Everything a lock made under this policy covers: the `environments` (every
    /// machine of the targets' operating systems, not only the targets) and the Python
    /// range. Marker implication is decided over this, as uv resolves over it.
    pub universe: MarkerTree,
}

/// An index uv can use: a name of ASCII letters, digits, `-`, `_` and `.`, and an
/// http(s) or file URL with a host (or a path, for file URLs).
fn check_index(name: &str, url: &str) -> Result<()> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        bail!(
            "[indexes] {name:?} is not an index name uv accepts (ASCII letters, digits, -, _ and .)"
        );
    }
    let host_ok = url::Url::parse(url).is_ok_and(|u| match u.scheme() {
        "http" | "https" => u.host_str().is_some_and(|h| !h.is_empty()),
        "file" => true,
        _ => false,
    }) && !url.chars().any(char::is_whitespace);
    if !host_ok {
        bail!("[indexes.{name}] url {url:?} is not a URL (write https://HOST/PATH)");
    }
    Ok(())
}

/// `owner/repo@<full commit> # vX`: pinned to a commit, its version beside it.
fn check_action_pin(role: &str, pin: &str) -> Result<()> {
    let (uses, comment) = pin.split_once(" # ").unwrap_or((pin, ""));
    let (repo, sha) = uses.split_once('@').unwrap_or((uses, ""));
    let full_sha = sha.len() == 40 && sha.chars().all(|c| c.is_ascii_hexdigit());
    if repo.split('/').count() < 2 || !full_sha || comment.trim().is_empty() {
        bail!("[workflow.actions] {role} = {pin:?}: write owner/repo@<40-hex commit> # <version>");
    }
    Ok(())
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// `[pytest.gpu]` checked: needs are gpu, cuda, mps or any; markers are registered in
/// `[pytest.markers]` (so `port` registers them); patterns name a test (`path::name`).
fn gpu_tests(p: &PytestPolicy) -> Result<GpuTests> {
    let need = |what: String, v: &str| {
        Need::parse(v)
            .ok_or_else(|| anyhow::anyhow!("{what}: {v:?} is not a need (gpu, cuda, mps or any)"))
    };
    let mut out = GpuTests::default();
    for (marker, v) in &p.gpu.markers {
        let n = need(format!("[pytest.gpu.markers] {marker}"), v)?;
        if !p.markers.contains_key(marker) {
            bail!("[pytest.gpu.markers] {marker:?} is not registered in [pytest.markers]");
        }
        out.markers.push((marker.clone(), n));
    }
    for (key, patterns) in &p.gpu.node_ids {
        let n = need("[pytest.gpu.node-ids]".into(), key)?;
        for pat in patterns {
            if !pat.contains("::") || pat.contains('[') {
                bail!(
                    "[pytest.gpu.node-ids] {key}: {pat:?} is not a test pattern (write path::name, without [parameters])"
                );
            }
            out.node_ids.push((pat.clone(), n));
        }
    }
    Ok(out)
}

impl Policy {
    /// Load `--policy FILE`, or the workspace's templates/platforms.toml.
    pub fn load(workspace: &Utf8Path, flag: Option<&Utf8Path>) -> Result<Policy> {
        let (path, flag_name) = match flag {
            Some(p) => (p.to_path_buf(), "--policy "),
            None => (workspace.join(DEFAULT_PATH), ""),
        };
        let text = std::fs::read_to_string(&path).map_err(|e| {
            error::usage(format!(
                "{flag_name}{path}: cannot read the policy: {e} (pass --policy FILE)"
            ))
        })?;
        Self::parse(&text).map_err(|e| error::usage(format!("{flag_name}{path}: {e:#}")))
    }

    pub fn parse(text: &str) -> Result<Policy> {
        let file: File = toml_edit::de::from_str(text)
            .map_err(|e| anyhow::anyhow!(names::toml_error("", text, e.span(), e.message())))?;
        let python = file.python;
        pep::specifiers(&python.requires_python)
            .with_context(|| format!("[python] requires-python {:?}", python.requires_python))?;
        for (name, ix) in &file.indexes {
            check_index(name, &ix.url)?;
        }
        let targets = targets(file.targets, &file.groups, &python)?;
        let mut torch = file.torch;
        torch_sources(&mut torch, &file.indexes, &targets)?;
        let gpus = gpus(file.gpus, &file.gpu_families, &targets)?;
        let torch_builds = torch_builds(&torch, &file.indexes)?;
        let rules = file
            .packages
            .into_iter()
            .map(|r| rule(r, &targets))
            .collect::<Result<Vec<_>>>()?;
        check_groups(&file.groups, &rules)?;
        let gpu_tests = gpu_tests(&file.pytest)?;
        for (role, pin) in &file.workflow.actions {
            check_action_pin(role, pin)?;
        }
        for marker in file.pytest.markers.keys() {
            if !is_identifier(marker) {
                bail!(
                    "[pytest.markers] {marker:?} is not a marker name (letters, digits and _, not starting with a digit)"
                );
            }
        }
        for (what, v) in [
            ("[uv] version", &file.uv.version),
            ("[uv] minimum", &file.uv.minimum),
        ] {
            pep::version(v).with_context(|| format!("{what} {v:?}"))?;
        }
        let universe = universe(&targets, &python.requires_python)?;
        Ok(Policy {
            universe,
            gpus,
            gpu_families: file.gpu_families,
            torch_builds,
            python,
            indexes: file.indexes,
            torch,
            targets,
            rules,
            groups: file.groups,
            pytest: file.pytest,
            gpu_tests,
            uv: file.uv,
            app: file.app,
            workflow: file.workflow,
            imports: file
                .imports
                .into_iter()
                .map(|(k, v)| (crate::names::normalize(&k), v))
                .collect(),
        })
    }

    /// A target by canonical name or Docker alias; unknown names are a usage error.
    pub fn target(&self, name: &str) -> Result<&Target> {
        self.targets
            .iter()
            .find(|t| t.name == name || t.docker_alias.as_deref() == Some(name))
            .ok_or_else(|| {
                error::usage(format!(
                    "unknown target {name:?}: choose one of {}",
                    self.target_names().join(", ")
                ))
            })
    }

    #[allow(dead_code)] // for commands that take --target (audit, docker)
    /// The targets named (by name or alias), or all of them when none is.
    pub fn select(&self, names: &[String]) -> Result<Vec<&Target>> {
        if names.is_empty() {
            return Ok(self.targets.iter().collect());
        }
        names
            .iter()
            .map(|n| {
                self.target(n)
                    .map_err(|e| error::usage(format!("--target: {}", error::line_of(&e))))
            })
            .collect()
    }

    pub fn target_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for t in &self.targets {
            names.push(t.name.clone());
            if let Some(a) = &t.docker_alias {
                names.push(a.clone());
            }
        }
        names
    }

    /// The target a machine maps to (by `sys_platform` and `platform_machine`).
    pub fn target_for_host(&self, os: Os, arch: &Arch) -> Option<&Target> {
        self.targets
            .iter()
            .find(|t| t.os() == os && &t.arch() == arch)
    }

    /// The rule that applies to a requirement, if any. Version-dependent rules are chosen
    /// by the version the requirement resolves to (its pin; the newest release when
    /// nothing bounds it above; else its lower bound); when that is unknown, the most
    /// restrictive rule applies.
    pub fn rule_for(&self, req: &Requirement) -> Option<&Rule> {
        let name = req.name.as_ref(); // a PackageName: normalised already
        let mut matching = self.rules.iter().filter(|r| r.matches_name(name));
        match pep::resolves_to(req) {
            pep::Resolves::To(v) => {
                matching.find(|r| r.versions.as_ref().is_none_or(|s| s.contains(&v)))
            }
            pep::Resolves::Newest => {
                let newest = pep::version("999999").expect("valid");
                matching.find(|r| r.versions.as_ref().is_none_or(|s| s.contains(&newest)))
            }
            pep::Resolves::Unknown => matching.min_by_key(|r| (!r.never_list, r.targets.len())),
        }
    }

    /// The distinct OS markers of the targets, in order: `[tool.uv] environments`.
    pub fn environments(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for t in &self.targets {
            let m = t.os_marker();
            if !out.contains(&m) {
                out.push(m);
            }
        }
        out
    }

    /// The `[[torch.sources]]` entry that serves torch on a target for the torch the
    /// project asks for (`torch`: its requirement, if it has one), or None for the
    /// default index. The version is chosen as for package rules: the pin, the newest
    /// release when nothing bounds it above, else the lower bound; unknown → the first
    /// entry naming the target.
    pub fn torch_source(&self, target: &str, torch: Option<&Requirement>) -> Option<&TorchSource> {
        let version = match torch.map(pep::resolves_to) {
            Some(pep::Resolves::To(v)) => Some(v),
            Some(pep::Resolves::Unknown) => None,
            Some(pep::Resolves::Newest) | None => Some(pep::version("999999").expect("valid")),
        };
        self.torch
            .sources
            .iter()
            .filter(|s| s.targets.iter().any(|t| t == target))
            .find(|s| version.as_ref().is_none_or(|v| s.holds(v)))
    }

    /// The torch sources for the torch the project asks for: one (index, marker) per
    /// index, the marker being the OS marker when the index serves every target of that
    /// OS, else the targets' markers joined. Targets served by the default index get none.
    pub fn torch_sources(&self, torch: Option<&Requirement>) -> Vec<(String, String)> {
        let mut by_index: IndexMap<&str, Vec<&Target>> = IndexMap::new();
        for t in &self.targets {
            if let Some(src) = self.torch_source(&t.name, torch) {
                by_index.entry(src.index.as_str()).or_default().push(t);
            }
        }
        let mut out: Vec<(String, String)> = by_index
            .into_iter()
            .map(|(index, ts)| {
                let mut parts: Vec<String> = Vec::new();
                for os in ts.iter().map(|t| t.sys_platform.as_str()) {
                    let all_of_os = self.targets.iter().filter(|t| t.sys_platform == os);
                    let covered = all_of_os
                        .clone()
                        .all(|t| ts.iter().any(|x| x.name == t.name));
                    let part = if covered {
                        format!("sys_platform == '{os}'")
                    } else {
                        ts.iter()
                            .filter(|t| t.sys_platform == os)
                            .map(|t| format!("({})", t.marker))
                            .collect::<Vec<_>>()
                            .join(" or ")
                    };
                    if !parts.contains(&part) {
                        parts.push(part);
                    }
                }
                (index.to_string(), parts.join(" or "))
            })
            .collect();
        out.sort();
        out
    }
}

/// `[[torch.sources]]` checked: an index that exists, known targets, valid versions.
fn torch_sources(
    torch: &mut TorchPolicy,
    indexes: &IndexMap<String, Index>,
    targets: &[Target],
) -> Result<()> {
    for s in &mut torch.sources {
        let label = format!("[[torch.sources]] {}", s.index);
        if !indexes.contains_key(&s.index) {
            bail!(
                "{label}: index {:?} is not an index in [indexes] (known: {})",
                s.index,
                indexes.keys().cloned().collect::<Vec<_>>().join(", ")
            );
        }
        for t in &s.targets {
            if !targets.iter().any(|x| &x.name == t) {
                bail!("{label}: unknown target {t:?}");
            }
        }
        if let Some(v) = &s.versions {
            s.specifiers =
                Some(pep::specifiers(v).with_context(|| format!("{label}: versions {v:?}"))?);
        }
    }
    Ok(())
}

/// `[targets]` checked: a known OS, an index that exists, a group that exists, and a
/// marker that holds on that target and on no other.
fn targets(
    file: IndexMap<String, Target>,
    groups: &IndexMap<String, Vec<String>>,
    python: &PythonPolicy,
) -> Result<Vec<Target>> {
    let mut targets = Vec::new();
    for (name, mut t) in file {
        if Os::from_sys_platform(&t.sys_platform).is_none() {
            bail!(
                "[targets.{name}] sys-platform {:?} is not one of linux, darwin, win32",
                t.sys_platform
            );
        }
        if let Some(g) = &t.group
            && !groups.contains_key(g)
        {
            bail!("[targets.{name}] group {g:?} has no entry in [groups]");
        }
        let env = t
            .env_at(&python.version)
            .with_context(|| format!("[targets.{name}]"))?;
        t.name = name;
        t.env = Some(env);
        targets.push(t);
    }
    if targets.is_empty() {
        bail!("[targets] is empty");
    }
    for t in &targets {
        let m = pep::marker(&t.marker)
            .with_context(|| format!("[targets.{}] marker {:?}", t.name, t.marker))?;
        for other in &targets {
            let holds = pep::evaluate(&m, other.env(), None);
            if holds != (other.name == t.name) {
                bail!(
                    "[targets.{}] marker {:?} {} on target {}",
                    t.name,
                    t.marker,
                    if holds { "also holds" } else { "does not hold" },
                    other.name
                );
            }
        }
    }
    Ok(targets)
}

/// One `[[packages]]` rule checked: known targets, valid versions and marker, and a
/// marker that holds on exactly the targets it lists.
fn rule(mut r: RuleFile, targets: &[Target]) -> Result<Rule> {
    let patterns: Vec<String> = match (r.name.is_empty(), r.names.is_empty()) {
        (false, true) => vec![r.name.clone()],
        (true, false) => std::mem::take(&mut r.names),
        _ => bail!(
            "[[packages]] {:?}: give `name` or `names`, one of the two",
            if r.name.is_empty() {
                r.names.join(", ")
            } else {
                r.name.clone()
            }
        ),
    };
    let name = patterns.join(", ");
    let label = match &r.versions {
        Some(v) => format!("[[packages]] {name} {v}"),
        None => format!("[[packages]] {name}"),
    };
    for t in r.targets.iter().chain(r.wheels.iter().flatten()) {
        if !targets.iter().any(|x| &x.name == t) {
            bail!("{label}: unknown target {t:?}");
        }
    }
    let versions = match &r.versions {
        Some(v) => Some(pep::specifiers(v).with_context(|| format!("{label}: versions {v:?}"))?),
        None => None,
    };
    let marker_tree = match &r.marker {
        Some(m) => pep::marker(m).with_context(|| format!("{label}: marker {m:?}"))?,
        None => MarkerTree::TRUE,
    };
    if r.never_list {
        if r.marker.is_some() || !r.targets.is_empty() {
            bail!("{label}: never-list rules take no marker or targets");
        }
    } else if r.marker.is_none() {
        bail!("{label}: a marker is required (the condition port adds)");
    } else {
        for t in targets {
            let holds = pep::evaluate(&marker_tree, t.env(), None);
            let listed = r.targets.contains(&t.name);
            if holds != listed {
                bail!(
                    "{label}: marker {:?} {} target {} but targets {} it",
                    r.marker.as_deref().unwrap_or_default(),
                    if holds { "holds on" } else { "excludes" },
                    t.name,
                    if listed { "lists" } else { "does not list" }
                );
            }
        }
    }
    Ok(Rule {
        name,
        patterns,
        versions,
        targets: r.targets,
        marker: r.marker,
        marker_tree,
        never_list: r.never_list,
        build_requires: r.build_requires,
        wheels: r.wheels,
        reason: r.reason,
    })
}

/// `[groups]`: requirements that no never-list rule forbids.
fn check_groups(groups: &IndexMap<String, Vec<String>>, rules: &[Rule]) -> Result<()> {
    for (group, pkgs) in groups {
        for p in pkgs {
            let req = pep::requirement(p).with_context(|| format!("[groups] {group}: {p:?}"))?;
            let name = req.name.as_ref();
            if let Some(r) = rules.iter().find(|r| r.never_list && r.matches_name(name)) {
                bail!(
                    "[groups] {group}: {p:?} matches the never-list rule {:?}",
                    r.name
                );
            }
        }
    }
    Ok(())
}

/// `(sys_platform == 'linux' or sys_platform == 'darwin') and python_full_version == '3.12.*'`
fn universe(targets: &[Target], requires_python: &str) -> Result<MarkerTree> {
    let mut os = MarkerTree::FALSE;
    for t in targets {
        os.or(pep::marker(&t.os_marker())?);
    }
    let mut all = os;
    for spec in pep::specifiers(requires_python)?.iter() {
        let text = spec.to_string();
        let split = text
            .find(|c: char| !"=!<>~".contains(c))
            .unwrap_or(text.len());
        let (op, version) = text.split_at(split);
        all.and(pep::marker(&format!(
            "python_full_version {op} '{}'",
            version.trim()
        ))?);
    }
    Ok(all)
}

mod gpu;
pub use gpu::release_of;
use gpu::{gpus, torch_builds};

#[cfg(test)]
pub(crate) mod tests;
