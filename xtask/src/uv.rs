//! uv and Python for the dev loop: find uv (PATH, then the workspace's tools folder),
//! install the pinned version with pip when it is absent or too old (never a curl-pipe
//! installer), and find a Python that satisfies requires-python.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};

use crate::error;
use crate::pep;
use crate::platform::parse;
use crate::policy::Policy;
use crate::process::{Cmd, find};

/// A usable uv.
#[derive(Debug, Clone)]
pub struct Uv {
    pub path: PathBuf,
    pub version: String,
}

impl Uv {
    pub fn cmd(&self) -> Cmd {
        Cmd::new(&self.path)
    }
}

/// Where pip-installed tools live: `$XTASK_TOOLS_DIR`, else `<workspace>/.xtask/tools`.
pub fn tools_dir(workspace: &Utf8Path) -> Utf8PathBuf {
    match std::env::var("XTASK_TOOLS_DIR") {
        Ok(d) if !d.is_empty() => Utf8PathBuf::from(d),
        _ => workspace.join(".xtask").join("tools"),
    }
}

fn version_of(path: &Path) -> Option<String> {
    Cmd::new(path)
        .arg("--version")
        .probe(Duration::from_secs(10))
        .ok_stdout()
        .and_then(parse::version_in)
}

fn at_least(version: &str, minimum: &str) -> bool {
    match (pep::version(version), pep::version(minimum)) {
        (Ok(v), Ok(m)) => v >= m,
        _ => false,
    }
}

/// The files `ensure` would try, by identity (path, size, modification time, inode),
/// read without running any of them: a cache keyed by it is valid while no uv that
/// `ensure` could pick has changed.
pub fn candidates_identity(workspace: &Utf8Path, policy: &Policy) -> String {
    let local = tools_dir(workspace)
        .join(format!("uv-{}", policy.uv.version))
        .join("bin")
        .join("uv");
    let mut out = String::new();
    for path in find("uv").into_iter().chain([local.into_std_path_buf()]) {
        out.push_str(&path.display().to_string());
        if let Ok(m) = std::fs::metadata(&path) {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos());
            #[cfg(unix)]
            let ino = std::os::unix::fs::MetadataExt::ino(&m);
            #[cfg(not(unix))]
            let ino = 0;
            out.push_str(&format!(" {} {mtime} {ino}", m.len()));
        }
        out.push('\n');
    }
    out
}

/// uv from PATH or the tools folder, installing the policy's version when needed.
pub fn ensure(workspace: &Utf8Path, policy: &Policy) -> Result<Uv> {
    let min = &policy.uv.minimum;
    let pinned = &policy.uv.version;
    let local = tools_dir(workspace)
        .join(format!("uv-{pinned}"))
        .join("bin")
        .join("uv");
    let mut seen = Vec::new();
    for path in find("uv")
        .into_iter()
        .chain([local.clone().into_std_path_buf()])
    {
        if !path.is_file() {
            continue;
        }
        match version_of(&path) {
            Some(v) if at_least(&v, min) => {
                errln!("uv {v} ({})", path.display());
                return Ok(Uv { path, version: v });
            }
            Some(v) => seen.push(format!("{} is {v}", path.display())),
            None => seen.push(format!("{} does not answer --version", path.display())),
        }
    }
    let why = if seen.is_empty() {
        "uv is not on PATH".to_string()
    } else {
        format!("uv {min} or newer is needed ({})", seen.join("; "))
    };
    install(&local, pinned, &why)
}

fn install(local: &Utf8Path, version: &str, why: &str) -> Result<Uv> {
    let target = local
        .parent()
        .and_then(Utf8Path::parent)
        .expect("tools/uv-X/bin/uv");
    let python = find("python3").or_else(|| find("python")).ok_or_else(|| {
        error::absent(format!(
            "{why}, and there is no python3 to install it with pip: install uv ({version}) with your package manager or `pip install uv=={version}`"
        ))
    })?;
    errln!("{why}: installing uv {version} with pip into {target}");
    let out = Cmd::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
        ])
        .arg(target.as_str())
        .arg(format!("uv=={version}"))
        .probe(Duration::from_secs(600));
    if out.ok_stdout().is_none() || !local.is_file() {
        return Err(error::absent(format!(
            "{why}, and `{} -m pip install uv=={version}` failed ({}): install uv yourself and put it on PATH",
            python.display(),
            out.failure_line()
        )));
    }
    let v = version_of(local.as_std_path()).unwrap_or_else(|| version.to_string());
    errln!("uv {v} ({local})");
    Ok(Uv {
        path: local.as_std_path().to_path_buf(),
        version: v,
    })
}

/// A Python for `requires`: None when uv finds one itself (uv sync will use it), else
/// an interpreter from PATH or pyenv's versions folder (whose shims uv cannot use).
pub fn python_for(uv: &Uv, project: &Utf8Path, requires: &str) -> Result<Option<PathBuf>> {
    let specs = pep::specifiers(requires).map_err(|e| {
        error::usage(format!(
            "{project}/pyproject.toml: requires-python {requires:?}: {e}"
        ))
    })?;
    let found = uv
        .cmd()
        .args(["python", "find", "--no-python-downloads"])
        .arg(requires)
        .dir(project.as_std_path())
        .probe(Duration::from_secs(30));
    if found.ok_stdout().is_some() {
        return Ok(None);
    }
    for py in crate::platform::probe::pythons() {
        if pep::version(&py.version).is_ok_and(|v| specs.contains(&v)) {
            errln!("Python {} from {} ({})", py.version, py.path, py.source);
            return Ok(Some(py.path.into_std_path_buf()));
        }
    }
    let downloads = std::env::var("UV_PYTHON_DOWNLOADS").unwrap_or_default();
    if downloads == "never" || downloads == "manual" {
        return Err(error::absent(format!(
            "no Python satisfying requires-python {requires:?} on this machine (searched uv's interpreters, PATH and pyenv's versions folder) and UV_PYTHON_DOWNLOADS={downloads}: install one (your OS package, `pyenv install`, or `uv python install`)"
        )));
    }
    errln!("note: no local Python satisfies {requires:?}; uv will try to download one");
    Ok(None)
}

/// Whether a module is installed in the project's .venv.
pub fn installed(project: &Utf8Path, module: &str) -> bool {
    let venv = project.join(".venv");
    let Ok(entries) = std::fs::read_dir(venv.join("lib")) else {
        return venv.join("Lib").join("site-packages").join(module).is_dir();
    };
    entries
        .filter_map(|e| e.ok())
        .any(|e| e.path().join("site-packages").join(module).is_dir())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare() {
        assert!(at_least("0.13.9", "0.8.0"));
        assert!(!at_least("0.7.22", "0.8.0"));
        assert!(!at_least("garbage", "0.8.0"));
    }
}
