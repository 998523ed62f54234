//! Which accelerator a torch runs on, and which GPUs: its build (from its local version,
//! else the CUDA runtime its wheel pulls in on a target), the policy's facts on the GPU
//! code of that build, the GPUs a target promises or a user asks about, and whether
//! torchvision / torchaudio match it. `audit` asks this of the lock, `port` of the source
//! it writes, `validate` of the installed environment.

use serde::Serialize;

use crate::gpu::{self, Asked};
use crate::names::{self, Arch, Os};
use crate::policy::{Policy, Target};

/// What a torch wheel is built for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Build {
    /// A CUDA build, `X.Y`.
    Cuda(String),
    Cpu,
    /// The macOS arm64 build: Apple's GPU through MPS (Metal).
    Mps,
    Rocm(Option<String>),
    Xpu,
    /// A local version this tool does not read (a vendor build): said as written.
    Unknown(String),
}

impl Build {
    /// As JSON says it: `cuda 12.8`, `cpu`, `mps`, `rocm`, `xpu`, `unknown`.
    pub fn wire(&self) -> String {
        match self {
            Build::Cuda(v) => format!("cuda {v}"),
            Build::Cpu => "cpu".into(),
            Build::Mps => "mps".into(),
            Build::Rocm(_) => "rocm".into(),
            Build::Xpu => "xpu".into(),
            Build::Unknown(_) => "unknown".into(),
        }
    }

    /// As a person reads it: `CUDA 12.8`, `CPU-only`, `MPS (Metal)`.
    pub fn describe(&self) -> String {
        match self {
            Build::Cuda(v) => format!("CUDA {v}"),
            Build::Cpu => "CPU-only".into(),
            Build::Mps => "MPS (Metal) for Apple Silicon".into(),
            Build::Rocm(Some(v)) => format!("ROCm {v} (AMD)"),
            Build::Rocm(None) => "ROCm (AMD)".into(),
            Build::Xpu => "XPU (Intel)".into(),
            Build::Unknown(local) => format!("an unrecognised build (local version +{local})"),
        }
    }
}

/// The build a `+local` version names: `+cu128` → CUDA 12.8, `+cpu` (and
/// `+cpu.cxx11.abi`), `+rocm6.3`, `+xpu`; any other local version is unknown. None
/// without a local version.
pub fn build_of_local(version: &str) -> Option<Build> {
    let local = version.split_once('+')?.1;
    let first = local.split('.').next().unwrap_or(local);
    Some(if let Some(cuda) = crate::lock::cuda_of_local(version) {
        Build::Cuda(cuda)
    } else if first == "cpu" {
        Build::Cpu
    } else if let Some(v) = local.strip_prefix("rocm") {
        Build::Rocm((!v.is_empty()).then(|| v.to_string()))
    } else if first == "xpu" {
        Build::Xpu
    } else {
        Build::Unknown(local.to_string())
    })
}

/// torch as a target gets it, and how its build was told.
#[derive(Clone, Debug)]
pub struct Found {
    pub version: String,
    pub build: Build,
    pub evidence: String,
}

/// The CUDA runtime packages torch's wheels pull in, with how their version names CUDA.
const RUNTIMES: [&str; 5] = [
    "nvidia-cuda-runtime-cu12",
    "nvidia-cuda-runtime-cu11",
    "nvidia-cuda-runtime-cu13",
    "nvidia-cuda-runtime",
    "cuda-toolkit",
];

/// torch as a lock installs it on `target`, from `installed`: every (name, version) the
/// target installs. None where it installs no torch.
pub fn from_lock(target: &Target, installed: &[(&str, &str)]) -> Option<Found> {
    let (_, version) = installed.iter().find(|(n, _)| names::same(n, "torch"))?;
    let version = version.to_string();
    if let Some(build) = build_of_local(&version) {
        let evidence = format!("its local version +{}", version.split_once('+')?.1);
        return Some(Found {
            version,
            build,
            evidence,
        });
    }
    let (build, evidence) = match (target.os(), target.arch()) {
        (Os::Macos, Arch::Aarch64) => (Build::Mps, "the macOS arm64 wheel".to_string()),
        (Os::Linux, _) => {
            let runtime = RUNTIMES.iter().find_map(|r| {
                installed
                    .iter()
                    .find(|(n, _)| names::same(n, r))
                    .map(|(n, v)| (*n, *v))
            });
            match runtime.and_then(|(n, v)| Some((n, v, x_y(v)?))) {
                Some((n, v, cuda)) => (
                    Build::Cuda(cuda),
                    format!("the CUDA runtime it pulls in here ({n} {v})"),
                ),
                None => (
                    Build::Cpu,
                    "no CUDA runtime package is installed with it here".to_string(),
                ),
            }
        }
        _ => (Build::Cpu, "no CUDA build for this OS".to_string()),
    };
    Some(Found {
        version,
        build,
        evidence,
    })
}

/// torch as installed, from its `torch/version.py` (no Python started): `__version__`,
/// and `cuda` / `hip` / `xpu`, each a quoted string or None. None when the file has no
/// `__version__`.
pub fn from_version_py(text: &str, os: Os, arch: &Arch) -> Option<Found> {
    let value = |key: &str| -> Option<Option<String>> {
        text.lines().find_map(|l| {
            let (lhs, rhs) = l.split_once('=')?;
            let name = lhs.split(':').next()?.trim();
            (name == key).then(|| {
                let v = rhs.trim().trim_matches(|c| c == '\'' || c == '"');
                (v != "None" && !v.is_empty()).then(|| v.to_string())
            })
        })
    };
    let version = value("__version__")??;
    let (build, evidence) = match (
        value("cuda").flatten(),
        value("hip").flatten(),
        value("xpu").flatten(),
    ) {
        (Some(c), _, _) => (
            Build::Cuda(x_y(&c).unwrap_or(c.clone())),
            format!("torch/version.py: cuda = '{c}'"),
        ),
        (None, Some(h), _) => (
            Build::Rocm(x_y(&h)),
            format!("torch/version.py: hip = '{h}'"),
        ),
        (None, None, Some(x)) => (Build::Xpu, format!("torch/version.py: xpu = '{x}'")),
        _ => match (os, arch) {
            (Os::Macos, Arch::Aarch64) => (Build::Mps, "the macOS arm64 build".to_string()),
            _ => (Build::Cpu, "torch/version.py: cuda = None".to_string()),
        },
    };
    Some(Found {
        version,
        build,
        evidence,
    })
}

/// What a target will run once the project is locked as `port` wrote it: torch's source
/// for the torch the project asks for, and (when it pins one release) the kernels of
/// that build for the GPUs the target promises.
#[derive(Clone, Debug, Serialize)]
pub struct Predicted {
    pub target: String,
    /// The index `port` sources torch from there (`pytorch-cu128`); None: the default.
    pub index: Option<String>,
    /// The verdict, where the source and a pinned release say it before locking.
    pub torch: Option<Judged>,
    /// Else why it waits for the lock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Predict each target's torch from the project's dependencies (as `port` wrote them).
pub fn predict(policy: &Policy, dependencies: &[String]) -> Vec<Predicted> {
    let torch = dependencies
        .iter()
        .filter_map(|d| crate::pep::requirement(d).ok())
        .find(|r| names::same(r.name.as_ref(), "torch"));
    let Some(torch) = torch else {
        return Vec::new();
    };
    let pinned = match crate::pep::resolves_to(&torch) {
        crate::pep::Resolves::To(v) => Some(v.to_string()),
        _ => None,
    };
    let mut out = Vec::new();
    for t in &policy.targets {
        let source = policy.torch_source(&t.name, Some(&torch));
        let cuda = source
            .and_then(|s| policy.indexes.get(&s.index))
            .and_then(|ix| ix.cuda.clone());
        let found = match (&pinned, &cuda, t.os(), t.arch()) {
            (Some(v), Some(c), _, _) => Some(Found {
                version: v.clone(),
                build: Build::Cuda(c.clone()),
                evidence: format!("its source, {}", source.map_or("", |s| s.index.as_str())),
            }),
            (Some(v), None, Os::Macos, Arch::Aarch64) => Some(Found {
                version: v.clone(),
                build: Build::Mps,
                evidence: "the macOS arm64 wheel".into(),
            }),
            _ => None,
        };
        let note = match (&found, &cuda) {
            (Some(_), _) => None,
            (None, Some(c)) => Some(format!(
                "CUDA {c}; its kernels depend on the torch release the lock picks: `cargo xtask audit` after `cargo xtask lock`"
            )),
            (None, None) => Some(
                "from the default index, whose build is known once locked: `cargo xtask audit` after `cargo xtask lock`"
                    .into(),
            ),
        };
        let cuda_target = t.accelerator.as_deref() == Some("cuda");
        let torch = found.map(|f| {
            judge(
                policy,
                &t.arch(),
                cuda_target,
                &f,
                &gpus_for(policy, t, &[]),
                &[],
            )
        });
        out.push(Predicted {
            target: t.name.clone(),
            index: source.map(|s| s.index.clone()),
            torch,
            note,
        });
    }
    out
}

/// `12.8.90` → `12.8`.
fn x_y(v: &str) -> Option<String> {
    let mut parts = v.split('.');
    let (a, b) = (parts.next()?, parts.next()?);
    let num = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    (num(a) && num(b)).then(|| format!("{a}.{b}"))
}

/// The verdict on torch for one target (or one node): the JSON `audit` and `validate`
/// write, and the line they print.
#[derive(Clone, Debug, Serialize)]
pub struct Judged {
    pub version: String,
    /// `cuda 12.8`, `cpu`, `mps`, `rocm`, `xpu` or `unknown`.
    pub build: String,
    pub cuda: Option<String>,
    /// How the build was told (its local version, the runtime it pulls in).
    pub evidence: String,
    /// The machine code it carries (`sm_80`, ...); null where the policy has no fact.
    pub sm: Option<Vec<String>>,
    pub ptx: Option<Vec<String>>,
    /// Where the GPU-code fact comes from; or why there is none.
    pub kernels: String,
    pub gpus: GpuVerdicts,
    pub companions: Vec<CompanionVerdict>,
    /// What breaks, each with its fix.
    pub findings: Vec<String>,
    #[serde(skip)]
    build_typed: Option<Build>,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct GpuVerdicts {
    pub runs: Vec<String>,
    pub fails: Vec<String>,
    /// GPUs asked about where the build's GPU code is unknown.
    pub unknown: Vec<String>,
    /// Per GPU: its compute capability and why it runs or not.
    pub detail: Vec<GpuVerdict>,
}

#[derive(Clone, Debug, Serialize)]
pub struct GpuVerdict {
    pub gpu: String,
    pub cc: String,
    /// true, false, or null (unknown).
    pub runs: Option<bool>,
    pub why: String,
    /// Whether the target promises it (else a user asked).
    pub promised: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct CompanionVerdict {
    pub name: String,
    pub version: String,
    pub ok: bool,
    pub why: String,
}

/// GPUs to judge: those the target promises, then those asked (`--gpu`, a node's GPUs)
/// that come in machines of the target's architecture.
/// NVIDIA GPUs are judged on CUDA targets only.
pub fn gpus_for(policy: &Policy, t: &Target, asked: &[Asked]) -> Vec<(Asked, bool)> {
    if t.accelerator.as_deref() != Some("cuda") {
        return Vec::new();
    }
    let mut out: Vec<(Asked, bool)> = policy
        .promised(t)
        .into_iter()
        .map(|g| (Asked::of(g), true))
        .collect();
    for a in asked {
        let on_host = policy
            .gpu(&a.name)
            .is_none_or(|g| g.on_host(t.arch().as_str()));
        if on_host && !out.iter().any(|(o, _)| o.name == a.name) {
            out.push((a.clone(), false));
        }
    }
    out
}

/// Judge `found` for a target (or a node of it): the GPU code the policy knows for its
/// build, each GPU in `gpus` (promised or asked), torchvision / torchaudio in
/// `installed`, and the findings. `cuda_target`: the machines have NVIDIA GPUs.
pub fn judge(
    policy: &Policy,
    arch: &Arch,
    cuda_target: bool,
    found: &Found,
    gpus: &[(Asked, bool)],
    installed: &[(&str, &str)],
) -> Judged {
    let mut findings = Vec::new();
    let mut verdicts = GpuVerdicts::default();
    let (sm, ptx, kernels) = match &found.build {
        Build::Cuda(cuda) => match policy.build_fact(&found.version, cuda, arch) {
            Some(f) => {
                findings.extend(kernels_for(policy, arch, found, f, gpus, &mut verdicts));
                let source = format!(
                    "torch {} CUDA {} {}: {}",
                    f.versions_text,
                    f.cuda,
                    f.arch.as_str(),
                    f.source
                );
                (Some(f.list.sm_names()), Some(f.list.ptx_names()), source)
            }
            None => {
                let why = no_fact(found, cuda, arch);
                for (g, promised) in gpus {
                    verdicts.push(g, None, why.clone(), *promised);
                }
                (None, None, why)
            }
        },
        Build::Mps => (None, None, "n/a: Apple's GPU, through Metal".into()),
        other => {
            findings.extend(not_cuda(other, cuda_target, found, gpus, &mut verdicts));
            (None, None, format!("n/a: {}", other.describe()))
        }
    };
    let companions = companions(policy, found, installed);
    for c in companions.iter().filter(|c| !c.ok) {
        findings.push(format!("{} {}: {}", c.name, c.version, c.why));
    }
    Judged {
        version: found.version.clone(),
        build: found.build.wire(),
        cuda: match &found.build {
            Build::Cuda(v) => Some(v.clone()),
            _ => None,
        },
        evidence: found.evidence.clone(),
        sm,
        ptx,
        kernels,
        gpus: verdicts,
        companions,
        findings,
        build_typed: Some(found.build.clone()),
    }
}

/// A CUDA build the policy has a fact for: each GPU runs its kernels or not; a GPU that
/// does not is a finding naming the source that would run it.
fn kernels_for(
    policy: &Policy,
    arch: &Arch,
    found: &Found,
    f: &crate::policy::BuildFact,
    gpus: &[(Asked, bool)],
    verdicts: &mut GpuVerdicts,
) -> Vec<String> {
    let mut findings = Vec::new();
    for (g, promised) in gpus {
        let (runs, why) = gpu::verdict(&f.list, g);
        verdicts.push(g, Some(runs), why.clone(), *promised);
        if runs {
            continue;
        }
        let fix = policy
            .covering_source(&found.version, arch, g)
            .map(|s| format!("; {s} runs it"))
            .unwrap_or_else(|| "; no torch build the policy knows runs it".into());
        let whose = if *promised {
            "the target promises"
        } else {
            "asked about"
        };
        findings.push(format!(
            "{} ({whose}): {why}: torch {} carries {}{fix}",
            g.label(),
            found.version,
            f.list.describe(),
        ));
    }
    findings
}

/// Why a CUDA build's GPU code is unknown: a pre-release, or no fact for it.
fn no_fact(found: &Found, cuda: &str, arch: &Arch) -> String {
    match crate::policy::release_of(&found.version) {
        None => format!(
            "unknown: torch {} is a pre-release or nightly, whose GPU code no release fact describes",
            found.version
        ),
        Some(_) => format!(
            "unknown: the policy has no [[torch.builds]] fact for torch {} with CUDA {cuda} on {}",
            found.version,
            arch.as_str()
        ),
    }
}

/// A build that is not CUDA (CPU, ROCm, XPU) leaves every NVIDIA GPU idle: a finding on a
/// CUDA target; an unrecognised build is unknown, not guessed.
fn not_cuda(
    build: &Build,
    cuda_target: bool,
    found: &Found,
    gpus: &[(Asked, bool)],
    verdicts: &mut GpuVerdicts,
) -> Option<String> {
    let not_used = match build {
        Build::Unknown(_) => None,
        _ => Some(format!("{}: the NVIDIA GPU is not used", build.describe())),
    };
    for (g, promised) in gpus {
        match &not_used {
            Some(why) => verdicts.push(g, Some(false), why.clone(), *promised),
            None => verdicts.push(g, None, build.describe(), *promised),
        }
    }
    let why = not_used.filter(|_| cuda_target)?;
    Some(format!(
        "torch {} is {why} ({}); run `cargo xtask port` (it sources torch from the CUDA index), then `cargo xtask lock`",
        found.version, found.evidence
    ))
}

impl GpuVerdicts {
    fn push(&mut self, g: &Asked, runs: Option<bool>, why: String, promised: bool) {
        let list = match runs {
            Some(true) => &mut self.runs,
            Some(false) => &mut self.fails,
            None => &mut self.unknown,
        };
        list.push(g.name.clone());
        self.detail.push(GpuVerdict {
            gpu: g.name.clone(),
            cc: g.cc.to_string(),
            runs,
            why,
            promised,
        });
    }
}

/// torchvision and torchaudio against torch: the same build (local version) and the
/// release the policy pairs with torch's.
fn companions(policy: &Policy, found: &Found, installed: &[(&str, &str)]) -> Vec<CompanionVerdict> {
    let local = |v: &str| v.split_once('+').map(|(_, l)| l.to_string());
    let torch_release = crate::policy::release_of(&found.version);
    let mut out = Vec::new();
    for (name, version) in installed {
        let Some(rule) = policy.companion(name) else {
            continue;
        };
        let mut problems = Vec::new();
        let (theirs, ours) = (local(version), local(&found.version));
        if theirs != ours {
            let show = |l: &Option<String>| match l {
                Some(l) => format!("+{l}"),
                None => "no local version (the default index's build)".into(),
            };
            problems.push(format!(
                "built as {}, torch {} as {}: its C++ operators fail to load against this torch; take it from torch's index (`cargo xtask port` sources {} with torch)",
                show(&theirs),
                found.version,
                show(&ours),
                rule.name
            ));
        }
        let applies = rule
            .torch
            .as_deref()
            .and_then(|s| crate::pep::specifiers(s).ok())
            .zip(torch_release.as_ref())
            .is_none_or(|(s, v)| s.contains(v));
        if let (true, Some(tv)) = (applies, torch_release.as_ref()) {
            let r = tv.release();
            let (t_major, t_minor) = (r[0], r.get(1).copied().unwrap_or(0));
            let want = (rule.major.unwrap_or(t_major), t_minor + rule.minor_offset);
            let have = crate::policy::release_of(version).map(|v| {
                let r = v.release();
                (r[0], r.get(1).copied().unwrap_or(0))
            });
            if have.is_some_and(|h| h != want) {
                problems.push(format!(
                    "pairs with torch {t_major}.{t_minor} as {}.{}.*, not {version}: pin it to match torch",
                    want.0, want.1
                ));
            }
        }
        out.push(CompanionVerdict {
            name: name.to_string(),
            version: version.to_string(),
            ok: problems.is_empty(),
            why: if problems.is_empty() {
                format!("matches torch {}", found.version)
            } else {
                problems.join("; ")
            },
        });
    }
    out
}

impl Judged {
    /// `torch 2.8.0+cu128: CUDA 12.8, kernels for sm_80 sm_90 sm_100 sm_120: GH200,
    /// GB200, GB300, GB10 — not Thor (sm_110)`.
    pub fn line(&self) -> String {
        let build = self
            .build_typed
            .as_ref()
            .map(Build::describe)
            .unwrap_or_else(|| self.build.clone());
        let mut s = format!("torch {}: {build}", self.version);
        match (&self.sm, &self.ptx) {
            (Some(sm), Some(ptx)) => {
                s.push_str(&format!(", kernels for {}", sm.join(" ")));
                if !ptx.is_empty() {
                    s.push_str(&format!(" +PTX {}", ptx.join(" ")));
                }
            }
            _ if self.cuda.is_some() => s.push_str(", kernels unknown"),
            _ => {}
        }
        if self.build == "cpu" {
            s.push_str(&format!(" ({})", self.evidence));
        }
        let runs = &self.gpus.runs;
        let not: Vec<String> = self
            .gpus
            .detail
            .iter()
            .filter(|d| d.runs == Some(false))
            .map(|d| {
                format!(
                    "{} ({})",
                    d.gpu,
                    gpu::Cc::parse(&d.cc).map(|c| c.sm()).unwrap_or_default()
                )
            })
            .collect();
        if !runs.is_empty() {
            s.push_str(&format!(": {}", runs.join(", ")));
        }
        if !not.is_empty() {
            let lead = if runs.is_empty() {
                ": not "
            } else {
                " — not "
            };
            s.push_str(&format!("{lead}{}", not.join(", ")));
        }
        if !self.gpus.unknown.is_empty() {
            s.push_str(&format!("; unknown for {}", self.gpus.unknown.join(", ")));
        }
        s
    }
}

#[cfg(test)]
mod tests;
