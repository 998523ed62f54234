//! `policy check --torch-wheels`: each `[[torch.builds]]` fact for this machine's CPU
//! architecture held against a wheel. The newest torch in the fact's versions on the
//! policy's index for its CUDA (`[indexes.X] cuda`) is installed in a scratch environment,
//! and torch itself says what it carries: `torch._C._cuda_getArchFlags()` answers without a
//! GPU. Downloads gigabytes per fact (torch and its CUDA libraries): opt-in.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;
use pep508_rs::pep440_rs::Version;
use serde::{Deserialize, Serialize};

use super::Verdict;
use crate::gpu::ArchList;
use crate::names::Arch;
use crate::policy::{BuildFact, Policy};
use crate::process::Probe;
use crate::simple;

/// One fact and what its wheel said.
#[derive(Serialize, Debug)]
pub struct Row {
    /// `torch >=2.8, CUDA 12.8, x86_64`
    pub fact: String,
    /// The policy's list (`7.0;7.5;...;12.0`).
    pub claimed: String,
    pub index: Option<String>,
    pub url: Option<String>,
    /// The release installed (`2.9.1+cu128`).
    pub release: Option<String>,
    /// What that torch reports (`sm_70 sm_75 ...`).
    pub reported: Option<String>,
    pub status: Verdict,
    pub reason: Option<String>,
}

/// What the installed torch says about itself.
#[derive(Deserialize)]
struct Said {
    version: String,
    cuda: Option<String>,
    flags: String,
}

const ASK: &str = "import json, torch; print(json.dumps({'version': torch.__version__, \
'cuda': torch.version.cuda, 'flags': torch._C._cuda_getArchFlags()}))";

/// Every fact: checked where this machine's architecture and an index for its CUDA allow,
/// else said why not.
pub fn check(
    uv: &crate::uv::Uv,
    policy: &Policy,
    named: &BTreeMap<String, String>,
    here: &Arch,
) -> Result<Vec<Row>> {
    let mut progress = crate::out::Progress::new();
    let mut rows = Vec::new();
    for fact in &policy.torch_builds {
        let mut row = Row {
            fact: format!(
                "torch {}, CUDA {}, {}",
                fact.versions_text,
                fact.cuda,
                fact.arch.as_str()
            ),
            claimed: fact.arch_list.clone(),
            index: None,
            url: None,
            release: None,
            reported: None,
            status: Verdict::NotChecked,
            reason: None,
        };
        if &fact.arch != here {
            row.reason = Some(format!(
                "needs a Linux {} host (its wheels do not install here)",
                fact.arch.as_str()
            ));
            rows.push(row);
            continue;
        }
        let Some((name, url)) = index_for(policy, named, &fact.cuda) else {
            row.reason = Some(format!(
                "no index in the policy serves CUDA {} ([indexes.NAME] cuda = \"{}\")",
                fact.cuda, fact.cuda
            ));
            rows.push(row);
            continue;
        };
        row.index = Some(name.clone());
        row.url = Some(url.clone());
        progress.line(&format!("reading {}", simple::project_url(&url, "torch")));
        let page = match simple::read(&url, "torch")? {
            Ok(p) => p,
            Err(simple::Unread::Unreachable(why) | simple::Unread::NotFound(why)) => {
                row.status = Verdict::Unreachable;
                row.reason = Some(why);
                rows.push(row);
                continue;
            }
        };
        let Some(release) = newest(&page, fact, here) else {
            row.reason = Some(format!(
                "{name} has no Linux {} wheel of torch {} for CUDA {}",
                here.as_str(),
                fact.versions_text,
                fact.cuda
            ));
            rows.push(row);
            continue;
        };
        row.release = Some(release.to_string());
        progress.line(&format!(
            "installing torch=={release} from {name} (a scratch environment)"
        ));
        match ask_wheel(uv, policy, &url, &release) {
            Err(why) => {
                row.status = Verdict::Unreachable;
                row.reason = Some(why);
            }
            Ok(said) => judge(&mut row, fact, &said),
        }
        rows.push(row);
    }
    Ok(rows)
}

/// The policy's index for CUDA `cuda`, at its --index override where given.
fn index_for(
    policy: &Policy,
    named: &BTreeMap<String, String>,
    cuda: &str,
) -> Option<(String, String)> {
    let (name, ix) = policy
        .indexes
        .iter()
        .find(|(_, ix)| ix.cuda.as_deref() == Some(cuda))?;
    let url = named
        .get(name)
        .cloned()
        .unwrap_or_else(|| ix.url.trim_end_matches('/').to_string());
    Some((name.clone(), url))
}

/// The newest release in the fact's versions with a Linux wheel for `arch`; a release whose
/// local version names another CUDA (`+cu126` on a 12.8 fact) does not count.
fn newest(page: &simple::Page, fact: &BuildFact, arch: &Arch) -> Option<Version> {
    let local = format!("cu{}", fact.cuda.replace('.', ""));
    page.files
        .iter()
        .filter(|f| !f.yanked && f.filename.ends_with(".whl"))
        .filter(|f| f.filename.contains("linux") && f.filename.contains(arch.as_str()))
        .filter_map(|f| simple::file_version(&f.filename, "torch"))
        .filter(|v| !v.any_prerelease())
        .filter(|v| {
            let text = v.to_string();
            let (_, l) = text.split_once('+').unwrap_or((&text, ""));
            l.is_empty() || l == local
        })
        .filter(|v| {
            crate::policy::release_of(&v.to_string()).is_some_and(|r| fact.versions.contains(&r))
        })
        .max()
}

/// Install torch `release` from `url` into a scratch environment and ask it.
fn ask_wheel(
    uv: &crate::uv::Uv,
    policy: &Policy,
    url: &str,
    release: &Version,
) -> std::result::Result<Said, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("a scratch folder: {e}"))?;
    let venv = dir.path().join("venv");
    let run = |cmd: crate::process::Cmd, limit: u64| match cmd.probe(Duration::from_secs(limit)) {
        p @ Probe::Exited { code: Some(0), .. } => Ok(p),
        p => Err(p.failure_line()),
    };
    run(
        uv.cmd()
            .args(["venv", "--quiet", "--python", &policy.python.version])
            .arg(&venv),
        300,
    )
    .map_err(|e| format!("uv venv --python {}: {e}", policy.python.version))?;
    let python = venv.join("bin/python");
    run(
        uv.cmd()
            .args(["pip", "install", "--quiet", "--python"])
            .arg(&python)
            .args(["--index-url", url])
            .arg(format!("torch=={release}")),
        3600,
    )
    .map_err(|e| format!("uv pip install torch=={release}: {e}"))?;
    // From the scratch folder, so no torch/ folder of the caller's shadows the installed one.
    let asked = run(
        crate::process::Cmd::new(&python)
            .args(["-c", ASK])
            .dir(dir.path()),
        600,
    )
    .map_err(|e| format!("torch {release} did not say: {e}"))?;
    let text = asked.ok_stdout().unwrap_or_default();
    serde_json::from_str(text.lines().last().unwrap_or_default())
        .map_err(|e| format!("torch {release} answered {:?}: {e}", text.trim()))
}

/// The wheel's word against the fact.
fn judge(row: &mut Row, fact: &BuildFact, said: &Said) {
    row.reported = Some(said.flags.clone());
    let cuda_xy = said
        .cuda
        .as_deref()
        .and_then(crate::xy::Xy::parse)
        .map(|v| v.to_string());
    if cuda_xy.as_deref() != Some(fact.cuda.as_str()) {
        row.reason = Some(format!(
            "torch {} is built for {}, not CUDA {}: the index is not that CUDA's",
            said.version,
            cuda_xy.map_or("CPU only".into(), |c| format!("CUDA {c}")),
            fact.cuda
        ));
        return;
    }
    match ArchList::from_flags(&said.flags) {
        Ok(list) if list == fact.list => {
            row.status = Verdict::Ok;
        }
        Ok(list) => {
            row.status = Verdict::Differs;
            row.reason = Some(format!(
                "torch {} carries {}; the policy says {} ({})",
                said.version,
                list.describe(),
                fact.list.describe(),
                fact.source
            ));
        }
        Err(e) => {
            row.status = Verdict::Differs;
            row.reason = Some(format!(
                "torch {} reports {:?}: {e}",
                said.version, said.flags
            ));
        }
    }
}
