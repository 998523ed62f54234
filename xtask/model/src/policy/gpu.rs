//! The policy's GPU facts: `[[gpus]]` (names → compute capability), `[gpu-families]`,
//! the GPUs each target promises, `[[torch.builds]]` (the GPU code of torch's CUDA
//! builds, per release range, CUDA version and CPU architecture) and
//! `[[torch.companions]]`.

use anyhow::{Result, bail};
use indexmap::IndexMap;

use super::{BuildFact, Companion, GpuFile, Index, Policy, Target, TorchPolicy};
use crate::error;
use crate::gpu::{ArchList, Asked, Cc, Gpu};
use crate::names::Arch;
use crate::pep;

/// `[[gpus]]` checked: a compute capability, no name given twice, hosts that are CPU
/// architectures, every family known; each target's `gpus` names a known GPU that comes
/// in machines of its architecture, and its accelerator is cuda or mps.
pub(super) fn gpus(
    file: Vec<GpuFile>,
    families: &IndexMap<String, String>,
    targets: &[Target],
) -> Result<Vec<Gpu>> {
    for cc in families.keys() {
        if Cc::parse(cc).is_none_or(|c| c.to_string() != *cc) {
            bail!("[gpu-families] {cc:?} is not a compute capability (write X.Y, e.g. \"9.0\")");
        }
    }
    let mut out: Vec<Gpu> = Vec::new();
    for g in file {
        let label = format!("[[gpus]] {}", g.name);
        let cc = Cc::parse(&g.cc)
            .filter(|_| g.cc.contains('.'))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "{label}: cc {:?} is not a compute capability (write X.Y, e.g. \"9.0\")",
                    g.cc
                )
            })?;
        for h in &g.hosts {
            if !matches!(Arch::parse(h), Arch::X86_64 | Arch::Aarch64)
                || Arch::parse(h).as_str() != h
            {
                bail!("{label}: hosts: {h:?} is not x86_64 or aarch64");
            }
        }
        let gpu = Gpu {
            name: g.name.clone(),
            cc,
            aliases: g.aliases,
            hosts: g.hosts,
            only: g.only,
        };
        for n in std::iter::once(&gpu.name).chain(&gpu.aliases) {
            if let Some(other) = out.iter().find(|o| o.is_named(n)) {
                bail!(
                    "{label}: the name {n:?} is taken by [[gpus]] {}",
                    other.name
                );
            }
        }
        out.push(gpu);
    }
    for t in targets {
        match t.accelerator.as_deref() {
            None | Some("cuda" | "mps") => {}
            Some(other) => bail!(
                "[targets.{}] accelerator {other:?} is not cuda or mps",
                t.name
            ),
        }
        for name in &t.gpus {
            let Some(g) = out.iter().find(|g| g.is_named(name)) else {
                bail!(
                    "[targets.{}] gpus: {name:?} is not in [[gpus]] (known: {})",
                    t.name,
                    names(&out)
                );
            };
            if t.accelerator.as_deref() != Some("cuda") {
                bail!(
                    "[targets.{}] gpus: {name:?} is an NVIDIA GPU and the target's accelerator is not cuda",
                    t.name
                );
            }
            if !g.on_host(t.arch().as_str()) {
                bail!(
                    "[targets.{}] gpus: {name:?} comes in {} machines only",
                    t.name,
                    g.hosts.join(", ")
                );
            }
        }
    }
    Ok(out)
}

fn names(gpus: &[Gpu]) -> String {
    gpus.iter()
        .map(|g| g.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `[[torch.builds]]` checked: a version range, a CUDA version X.Y, x86_64 or aarch64,
/// an architecture list PyPI's build scripts would accept, and a source; and
/// `[[torch.companions]]`: valid ranges. Index `cuda` versions are X.Y.
pub(super) fn torch_builds(
    torch: &TorchPolicy,
    indexes: &IndexMap<String, Index>,
) -> Result<Vec<BuildFact>> {
    for (name, ix) in indexes {
        if let Some(c) = &ix.cuda
            && !is_x_y(c)
        {
            bail!("[indexes.{name}] cuda {c:?} is not a CUDA version X.Y");
        }
    }
    for c in &torch.companions {
        if let Some(v) = &c.torch {
            pep::specifiers(v).map_err(|e| {
                anyhow::anyhow!("[[torch.companions]] {}: torch {v:?}: {e:#}", c.name)
            })?;
        }
    }
    let mut out = Vec::new();
    for b in &torch.builds {
        let label = format!(
            "[[torch.builds]] torch {} CUDA {} {}",
            b.versions, b.cuda, b.arch
        );
        let versions = pep::specifiers(&b.versions)
            .map_err(|e| anyhow::anyhow!("{label}: versions: {e:#}"))?;
        if !is_x_y(&b.cuda) {
            bail!("{label}: cuda {:?} is not a CUDA version X.Y", b.cuda);
        }
        let arch = Arch::parse(&b.arch);
        if !matches!(arch, Arch::X86_64 | Arch::Aarch64) || arch.as_str() != b.arch {
            bail!("{label}: arch {:?} is not x86_64 or aarch64", b.arch);
        }
        let list = ArchList::from_torch_list(&b.arch_list)
            .map_err(|e| anyhow::anyhow!("{label}: arch-list: {e}"))?;
        if b.source.trim().is_empty() {
            bail!("{label}: source is empty (say where the list comes from)");
        }
        out.push(BuildFact {
            versions,
            versions_text: b.versions.clone(),
            cuda: b.cuda.clone(),
            arch,
            arch_list: b.arch_list.clone(),
            list,
            source: b.source.clone(),
        });
    }
    Ok(out)
}

fn is_x_y(v: &str) -> bool {
    let parts: Vec<&str> = v.split('.').collect();
    parts.len() == 2
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `2.8.0+cu128` → `2.8.0`; None for a pre-release, dev or nightly build, whose GPU code
/// no release fact describes.
pub fn release_of(torch_version: &str) -> Option<pep508_rs::pep440_rs::Version> {
    let public = torch_version.split('+').next().unwrap_or(torch_version);
    let v = pep::version(public).ok()?;
    (!v.any_prerelease()).then_some(v)
}

impl Policy {
    /// The GPU a name means (any spelling of a name or alias).
    pub fn gpu(&self, name: &str) -> Option<&Gpu> {
        self.gpus.iter().find(|g| g.is_named(name))
    }

    /// A `--gpu` value: a known name, or a compute capability as `sm_XY` (or `X.Y`).
    pub fn ask_gpu(&self, text: &str) -> Result<Asked> {
        if let Some(g) = self.gpu(text) {
            return Ok(Asked::of(g));
        }
        let t = text.trim();
        let cc = (t.starts_with("sm_") || t.contains('.'))
            .then(|| Cc::parse(t))
            .flatten();
        match cc {
            Some(cc) => Ok(Asked {
                name: cc.sm(),
                cc,
                only: None,
            }),
            None => Err(error::usage(format!(
                "--gpu {text}: not a GPU the policy knows ({}); or give its compute capability as sm_XY, e.g. sm_90",
                names(&self.gpus)
            ))),
        }
    }

    /// The GPUs a target promises, as the policy names them.
    pub fn promised(&self, t: &Target) -> Vec<&Gpu> {
        t.gpus.iter().filter_map(|n| self.gpu(n)).collect()
    }

    /// The architecture family of a compute capability (`9.0` → Hopper).
    pub fn family(&self, cc: Cc) -> Option<&str> {
        self.gpu_families.get(&cc.to_string()).map(String::as_str)
    }

    /// The GPU code of torch `version` built for CUDA `cuda` on `arch`, if the policy
    /// has the fact (never for a pre-release or nightly).
    pub fn build_fact(&self, version: &str, cuda: &str, arch: &Arch) -> Option<&BuildFact> {
        let v = release_of(version)?;
        self.torch_builds
            .iter()
            .find(|b| b.cuda == cuda && &b.arch == arch && b.versions.contains(&v))
    }

    /// Which index would give torch `version` kernels for `gpu` on `arch`: `pytorch-cu130
    /// (CUDA 13.0)`; else a release range that has them (`torch >=2.9 from pytorch-cu130
    /// (CUDA 13.0)`); None when no build the policy knows runs it.
    pub fn covering_source(&self, version: &str, arch: &Arch, gpu: &Asked) -> Option<String> {
        let runs = |b: &BuildFact| crate::gpu::verdict(&b.list, gpu).0;
        let cuda_indexes = || {
            self.indexes
                .iter()
                .filter_map(|(n, ix)| Some((n, ix.cuda.as_ref()?)))
        };
        for (name, cuda) in cuda_indexes() {
            if self.build_fact(version, cuda, arch).is_some_and(runs) {
                return Some(format!("{name} (CUDA {cuda})"));
            }
        }
        for (name, cuda) in cuda_indexes() {
            if let Some(b) = self
                .torch_builds
                .iter()
                .find(|b| &b.cuda == cuda && &b.arch == arch && runs(b))
            {
                return Some(format!(
                    "torch {} from {name} (CUDA {cuda})",
                    b.versions_text
                ));
            }
        }
        None
    }

    /// The companion rule for a package name (torchvision, torchaudio).
    pub fn companion(&self, name: &str) -> Option<&Companion> {
        self.torch
            .companions
            .iter()
            .find(|c| crate::names::same(&c.name, name))
    }
}
