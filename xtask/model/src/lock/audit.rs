//! The per-target verdict on a lock: each package reachable on a target is `wheel` (the
//! best matching wheel), `build` (sdist only), `missing` (nothing installable) or
//! `excluded` (its markers leave it out there). Used by `audit` and `validate`.

use anyhow::Result;
use serde::Serialize;

use super::{Package, Project, Selection, tags};
use crate::pep;
use crate::policy::{Policy, Target};

#[derive(Serialize, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Missing,
    Build,
    Wheel,
    Excluded,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Missing => "missing",
            Status::Build => "build",
            Status::Wheel => "wheel",
            Status::Excluded => "excluded",
        }
    }
}

#[derive(Serialize)]
pub struct PackageResult {
    pub name: String,
    pub version: String,
    pub status: Status,
    pub wheel: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The OS floor a target's chosen wheels need, beside the policy's: the highest of the
/// lowest glibc (or macOS) version each chosen wheel's tags name, and the package that
/// sets it.
#[derive(Serialize, Debug, PartialEq, Eq)]
pub struct FloorNeeded {
    /// "glibc" or "macOS".
    pub of: &'static str,
    /// The policy's floor for the target.
    pub policy: Option<String>,
    /// What the chosen wheels need; None when none of them names a floor.
    pub needed: Option<String>,
    /// `name version` of the package whose wheel needs the most.
    pub by: Option<String>,
}

pub fn floor_needed(packages: &[PackageResult], target: &Target) -> Option<FloorNeeded> {
    let plat = tags::Platform::for_target(target);
    let (of, policy) = match (&target.glibc, &target.macos) {
        (Some(g), _) => ("glibc", Some(g.clone())),
        (None, Some(m)) => ("macOS", Some(m.clone())),
        _ if plat.os == crate::names::Os::Linux => ("glibc", None),
        _ if plat.os == crate::names::Os::Macos => ("macOS", None),
        _ => return None,
    };
    let mut best: Option<((u32, u32), String)> = None;
    for p in packages.iter().filter(|p| p.status == Status::Wheel) {
        let Some(need) = p
            .wheel
            .as_deref()
            .and_then(tags::parse_wheel)
            .and_then(|w| tags::needs(&w, &plat))
        else {
            continue;
        };
        if best.as_ref().is_none_or(|(b, _)| need > *b) {
            best = Some((need, format!("{} {}", p.name, p.version)));
        }
    }
    Some(FloorNeeded {
        of,
        policy,
        needed: best.as_ref().map(|((a, b), _)| format!("{a}.{b}")),
        by: best.map(|(_, by)| by),
    })
}

/// Judges packages for targets; wheel names are parsed once for every target.
pub struct Auditor<'a> {
    proj: &'a Project,
    policy: &'a Policy,
    wheels: Vec<Vec<(String, tags::WheelName)>>,
    /// The interpreter's full version (`3.10.13`) for `python_full_version` markers;
    /// else `X.Y.0`.
    full_python: Option<String>,
}

impl<'a> Auditor<'a> {
    pub fn new(proj: &'a Project, policy: &'a Policy) -> Auditor<'a> {
        let wheels = proj
            .lock
            .package
            .iter()
            .map(|p| {
                p.wheels
                    .iter()
                    .filter_map(|w| w.filename())
                    .filter_map(|f| tags::parse_wheel(&f).map(|n| (f, n)))
                    .collect()
            })
            .collect();
        Auditor {
            proj,
            policy,
            wheels,
            full_python: None,
        }
    }

    /// Judge for this exact interpreter version (`X.Y.Z`).
    pub fn full_python(mut self, full: Option<String>) -> Auditor<'a> {
        self.full_python = full;
        self
    }

    /// uv's refusal, in its words, when the lock's supported environments
    /// (`[tool.uv] environments`, written as `supported-markers`) leave this target, at
    /// this Python, out: then nothing installs there.
    pub fn unsupported(&self, target: &Target, python: (u32, u32)) -> Result<Option<String>> {
        let markers = &self.proj.lock.supported_markers;
        if markers.is_empty() {
            return Ok(None);
        }
        let version = self
            .full_python
            .clone()
            .unwrap_or_else(|| format!("{}.{}", python.0, python.1));
        let env = target.env_at(&version)?;
        let holds = markers
            .iter()
            // A marker this tool cannot read is not held against the target.
            .any(|m| pep::marker(m).map_or(true, |t| pep::evaluate(&t, &env, None)));
        Ok((!holds).then(|| {
            format!(
                "The current Python platform is not compatible with the lockfile's supported environments: {}",
                markers
                    .iter()
                    .map(|m| format!("`{m}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }))
    }

    /// Every package `uv sync` would reach on `target`, with its status, missing first.
    pub fn target(
        &self,
        target: &Target,
        python: (u32, u32),
        sel: &Selection,
    ) -> Result<Vec<PackageResult>> {
        let version = self
            .full_python
            .clone()
            .unwrap_or_else(|| format!("{}.{}", python.0, python.1));
        let env = target.env_at(&version)?;
        let walk = self.proj.walk(&env, sel)?;
        let plat = tags::Platform::for_target(target);
        let lock = &self.proj.lock;
        let mut packages: Vec<PackageResult> = walk
            .reached
            .iter()
            .map(|&i| {
                judge(
                    &lock.package[i],
                    &self.wheels[i],
                    python,
                    &plat,
                    self.policy,
                )
            })
            .collect();
        packages.extend(
            walk.excluded
                .iter()
                .map(|&i| &lock.package[i])
                .map(|p| PackageResult {
                    name: p.name.clone(),
                    version: p.version.clone().unwrap_or_default(),
                    status: Status::Excluded,
                    wheel: None,
                    note: None,
                }),
        );
        packages.sort_by(|a, b| (a.status, &a.name).cmp(&(b.status, &b.name)));
        Ok(packages)
    }
}

fn judge(
    p: &Package,
    wheels: &[(String, tags::WheelName)],
    python: (u32, u32),
    plat: &tags::Platform,
    policy: &Policy,
) -> PackageResult {
    let version = p.version.clone().unwrap_or_default();
    let best = tags::best(wheels.iter().map(|(f, n)| (f, n)), python, plat);
    let mut platforms: Vec<String> = Vec::new();
    for t in wheels.iter().flat_map(|(_, n)| &n.platform) {
        if !platforms.contains(t) {
            platforms.push(t.clone());
        }
    }
    let build_note = || {
        let req = pep::requirement(&format!("{}=={}", p.name, version))
            .or_else(|_| pep::requirement(&p.name))
            .ok();
        let needs = req
            .as_ref()
            .and_then(|r| policy.rule_for(r))
            .and_then(|r| r.build_requires.clone());
        match needs {
            Some(n) => format!("sdist only: building needs {n}"),
            None => "sdist only: built on install by its build backend".to_string(),
        }
    };
    let (status, wheel, note) = if let Some(file) = best {
        (Status::Wheel, Some(file.clone()), None)
    } else if p.source.is_local_project() {
        (
            Status::Build,
            None,
            Some(format!(
                "local {} source, built on install",
                p.source.kind()
            )),
        )
    } else if p.sdist.is_some() || matches!(p.source, super::Source::Git(_)) {
        (Status::Build, None, Some(build_note()))
    } else if matches!(p.source, super::Source::Url(_)) && p.wheels.is_empty() {
        (
            Status::Build,
            None,
            Some("source archive from a URL: built on install".into()),
        )
    } else {
        let why = if platforms.is_empty() {
            "no wheel and no sdist in the lock".to_string()
        } else {
            format!("wheels only for {}; no sdist", platforms.join(", "))
        };
        (Status::Missing, None, Some(why))
    };
    PackageResult {
        name: p.name.clone(),
        version,
        status,
        wheel,
        note,
    }
}
