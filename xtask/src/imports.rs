//! Installs is not runs: the project's own imports of packages a target leaves out. The
//! Python files are parsed by the interpreter's own `ast` (`templates/audit/imports.py`,
//! standard library only, run with the project's .venv interpreter or any Python 3 here),
//! the import names mapped to distributions (installed metadata where an environment
//! exists, else the policy's `[imports]` table, else the distribution's own name), and
//! every import of a left-out distribution that is not guarded reported with file:line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use camino::{Utf8Path, Utf8PathBuf};
use serde::{Deserialize, Serialize};

use crate::error;
use crate::names::normalize;
use crate::policy::Policy;
use crate::process::Cmd;

/// One import as the parser reports it.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Import {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub module: String,
    pub top: String,
    /// `module` (runs when the file is imported) or `function` (when the function runs).
    pub scope: String,
    pub statement: String,
}

#[derive(Debug, Deserialize)]
struct Parsed {
    files: usize,
    guarded: usize,
    imports: Vec<Import>,
    warnings: Vec<String>,
}

/// Where the project's Python code is: its packages (and top-level modules) and its tests.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Sources {
    pub code: Vec<String>,
    pub tests: Vec<String>,
}

const NOT_CODE: [&str; 9] = [
    "tests",
    "test",
    "docs",
    "documentation",
    "build",
    "dist",
    "node_modules",
    "examples",
    "site-packages",
];

impl Sources {
    /// Top-level packages (folders with `__init__.py`, also under `src/`) and modules, and
    /// `tests/` (or `test/`); hidden folders and virtual environments are left out.
    pub fn find(project: &Utf8Path) -> Sources {
        let mut s = Sources::default();
        let mut entries = |dir: &Utf8Path, prefix: &str, top: bool| {
            let Ok(rd) = dir.read_dir_utf8() else {
                return;
            };
            let mut names: Vec<(String, bool)> = rd
                .filter_map(|e| e.ok())
                .map(|e| (e.file_name().to_string(), e.path().is_dir()))
                .collect();
            names.sort();
            for (name, is_dir) in names {
                if name.starts_with('.') || name.starts_with("venv") || name == "__pycache__" {
                    continue;
                }
                let rel = format!("{prefix}{name}");
                if is_dir {
                    if top && (name == "tests" || name == "test") {
                        s.tests.push(rel);
                    } else if !NOT_CODE.contains(&name.as_str())
                        && dir.join(&name).join("__init__.py").is_file()
                    {
                        s.code.push(rel);
                    }
                } else if name.ends_with(".py") && name != "setup.py" && name != "conftest.py" {
                    s.code.push(rel);
                }
            }
        };
        entries(project, "", true);
        entries(&project.join("src"), "src/", false);
        s
    }
}

/// What the parser found in the project.
#[derive(Debug, Default)]
pub struct Scan {
    pub files: usize,
    pub guarded: usize,
    pub imports: Vec<Import>,
    pub warnings: Vec<String>,
    /// The interpreter that parsed the code.
    pub python: String,
}

/// Parse the project's sources with `script` (templates/audit/imports.py).
pub fn scan(project: &Utf8Path, sources: &Sources, script: &Utf8Path) -> Result<Scan> {
    let all: Vec<&String> = sources.code.iter().chain(&sources.tests).collect();
    if all.is_empty() {
        return Ok(Scan::default());
    }
    let python = interpreter(project).ok_or_else(|| {
        error::absent(
            "the import audit parses the project's code with Python's own ast: no Python 3 \
             found (no .venv in the project, none on PATH or in pyenv's versions folder); \
             install one, or run `cargo xtask setup-dev` first",
        )
    })?;
    let probe = Cmd::new(&python)
        .arg(script.as_str())
        .arg(project.as_str())
        .args(all)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .probe(Duration::from_secs(300));
    let Some(out) = probe.ok_stdout() else {
        return Err(error::failed(format!(
            "the import parser ({} {script}) {}",
            python.display(),
            probe.failure_line()
        )));
    };
    let parsed: Parsed = serde_json::from_str(out.trim())
        .map_err(|e| error::failed(format!("the import parser's output is not its JSON: {e}")))?;
    Ok(Scan {
        files: parsed.files,
        guarded: parsed.guarded,
        imports: parsed.imports,
        warnings: parsed.warnings,
        python: python.display().to_string(),
    })
}

/// The project's own interpreter when it has a .venv, else the newest Python here.
fn interpreter(project: &Utf8Path) -> Option<PathBuf> {
    let venv = project.join(".venv");
    for p in [venv.join("bin/python"), venv.join("Scripts/python.exe")] {
        if p.is_file() {
            return Some(p.into_std_path_buf());
        }
    }
    let mut found = crate::platform::probe::pythons();
    found.sort_by_key(|p| {
        std::cmp::Reverse(
            p.version
                .split('.')
                .filter_map(|x| x.parse::<u32>().ok())
                .collect::<Vec<_>>(),
        )
    });
    found
        .into_iter()
        .find(|p| p.version.starts_with("3."))
        .map(|p| p.path.into_std_path_buf())
}

/// Which mapping said that a distribution provides an import name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mapping {
    /// `top_level.txt` or RECORD of the distribution installed in the project's .venv.
    Installed,
    /// The policy's `[imports]` table.
    Policy,
    /// The distribution's own name (`flash-attn` → `flash_attn`), as its wheels spell it.
    DistName,
}

impl Mapping {
    pub fn as_str(self) -> &'static str {
        match self {
            Mapping::Installed => "installed metadata",
            Mapping::Policy => "the policy's [imports] table",
            Mapping::DistName => "the distribution's name",
        }
    }
}

/// Import names by distribution (PEP 503 name), each with the mapping that said so.
#[derive(Debug, Default)]
pub struct Names {
    installed: BTreeMap<String, BTreeSet<String>>,
}

impl Names {
    /// Read the project's .venv metadata, if it has one.
    pub fn load(project: &Utf8Path) -> Names {
        let mut n = Names::default();
        for site in site_packages(&project.join(".venv")) {
            let Ok(rd) = site.read_dir_utf8() else {
                continue;
            };
            for e in rd.filter_map(|e| e.ok()) {
                let name = e.file_name();
                let Some(stem) = name.strip_suffix(".dist-info") else {
                    continue;
                };
                let dist = normalize(stem.split('-').next().unwrap_or(stem));
                let tops = top_names(e.path());
                if !tops.is_empty() {
                    n.installed.entry(dist).or_default().extend(tops);
                }
            }
        }
        n
    }

    /// The import names of a distribution, with the mapping of each.
    pub fn of(&self, dist: &str, policy: &Policy) -> Vec<(String, Mapping)> {
        let dist = normalize(dist);
        let mut out: Vec<(String, Mapping)> = Vec::new();
        let mut add = |name: &str, m: Mapping| {
            if !out.iter().any(|(n, _)| n == name) {
                out.push((name.to_string(), m));
            }
        };
        for n in self.installed.get(&dist).into_iter().flatten() {
            add(n, Mapping::Installed);
        }
        for n in policy.imports.get(&dist).into_iter().flatten() {
            add(n, Mapping::Policy);
        }
        add(&dist.replace('-', "_"), Mapping::DistName);
        out
    }
}

fn site_packages(venv: &Utf8Path) -> Vec<Utf8PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = venv.join("lib").read_dir_utf8() {
        for e in rd.filter_map(|e| e.ok()) {
            let sp = e.path().join("site-packages");
            if e.file_name().starts_with("python") && sp.is_dir() {
                out.push(sp);
            }
        }
    }
    let win = venv.join("Lib").join("site-packages");
    if win.is_dir() {
        out.push(win);
    }
    out
}

/// A dist-info's top-level import names: `top_level.txt`, else the first component of
/// each file RECORD lists (modules and packages; not metadata, scripts or data).
fn top_names(dist_info: &Utf8Path) -> BTreeSet<String> {
    if let Ok(t) = std::fs::read_to_string(dist_info.join("top_level.txt")) {
        let names: BTreeSet<String> = t
            .lines()
            .map(|l| l.trim().replace('/', "."))
            .filter(|l| !l.is_empty())
            .collect();
        if !names.is_empty() {
            return names;
        }
    }
    let Ok(record) = std::fs::read_to_string(dist_info.join("RECORD")) else {
        return BTreeSet::new();
    };
    record
        .lines()
        .filter_map(|l| l.split(',').next())
        .filter_map(|path| {
            let first = path.split('/').next()?;
            if path.starts_with("..") || first.ends_with(".dist-info") || first.ends_with(".data") {
                return None;
            }
            if path.contains('/') {
                (first != "__pycache__" && !first.is_empty()).then(|| first.to_string())
            } else {
                let m = first.strip_suffix(".py").or_else(|| {
                    first
                        .split_once('.')
                        .filter(|(_, ext)| ext.ends_with("so") || ext.ends_with("pyd"))
                        .map(|(m, _)| m)
                })?;
                Some(m.to_string())
            }
        })
        .filter(|n| !n.ends_with(".pth"))
        .collect()
}

/// An import that breaks on a target.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub file: String,
    pub line: u32,
    pub col: u32,
    pub statement: String,
    pub module: String,
    /// The distribution the target leaves out.
    pub package: String,
    pub mapping: Mapping,
    pub targets: Vec<String>,
    /// `import` (breaks when the file is imported) or `call` (when the function runs).
    pub breaks: Breaks,
    /// In the project's tests (a test that imports it fails collection there).
    pub test: bool,
    /// Accepted by `--allow-import` / `[tool.xtask] allow-imports`.
    pub allowed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Breaks {
    Import,
    Call,
}

/// `PKG:PATH`: imports of PKG in PATH (a file, or a folder and everything under it).
#[derive(Debug, Clone)]
pub struct Allow {
    package: String,
    path: String,
}

impl Allow {
    pub fn parse(s: &str, from: &str) -> Result<Allow> {
        match s.split_once(':') {
            Some((p, path)) if !p.is_empty() && !path.is_empty() => Ok(Allow {
                package: normalize(p),
                path: path.trim_end_matches('/').to_string(),
            }),
            _ => Err(error::usage(format!(
                "{from} {s:?}: write PKG:PATH, e.g. deepspeed:llm_studio/train.py"
            ))),
        }
    }

    fn covers(&self, package: &str, file: &str) -> bool {
        self.package == normalize(package)
            && (file == self.path || file.starts_with(&format!("{}/", self.path)))
    }
}

/// Every import of a distribution left out on some target, with the targets.
/// `left_out`: per target, the distributions it leaves out (and none of its installed
/// distributions provides the same import name).
pub fn findings(
    scan: &Scan,
    sources: &Sources,
    left_out: &BTreeMap<String, BTreeSet<String>>,
    installed: &BTreeMap<String, BTreeSet<String>>,
    names: &Names,
    policy: &Policy,
    allow: &[Allow],
) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    let provides = |dist: &str, module: &str| {
        names
            .of(dist, policy)
            .into_iter()
            .find(|(n, _)| module == n || module.starts_with(&format!("{n}.")))
    };
    for imp in &scan.imports {
        let test = sources
            .tests
            .iter()
            .any(|t| imp.file == *t || imp.file.starts_with(&format!("{t}/")));
        let mut hits: BTreeMap<String, (Mapping, Vec<String>)> = BTreeMap::new();
        for (target, dists) in left_out {
            for dist in dists {
                let Some((_, mapping)) = provides(dist, &imp.module) else {
                    continue;
                };
                // Another distribution installed there provides the same name.
                let elsewhere = installed
                    .get(target)
                    .into_iter()
                    .flatten()
                    .any(|d| d != dist && provides(d, &imp.module).is_some());
                if !elsewhere {
                    hits.entry(dist.clone())
                        .or_insert((mapping, Vec::new()))
                        .1
                        .push(target.clone());
                }
            }
        }
        for (package, (mapping, targets)) in hits {
            out.push(Finding {
                file: imp.file.clone(),
                line: imp.line,
                col: imp.col,
                statement: imp.statement.clone(),
                module: imp.module.clone(),
                allowed: allow.iter().any(|a| a.covers(&package, &imp.file)),
                package,
                mapping,
                targets,
                breaks: if imp.scope == "function" {
                    Breaks::Call
                } else {
                    Breaks::Import
                },
                test,
            });
        }
    }
    out
}

/// What to do about an import.
pub fn advice(f: &Finding) -> String {
    let top = f.module.split('.').next().unwrap_or(&f.module);
    match f.breaks {
        Breaks::Import => format!(
            "guard it: `try: import {top} except ImportError: {top} = None`, or import inside the function that needs it"
        ),
        Breaks::Call => "guard the call (check the import first) on those targets".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_covers_a_file_or_a_folder() {
        let a = Allow::parse("DeepSpeed:llm_studio/src/", "--allow-import").unwrap();
        assert!(a.covers("deepspeed", "llm_studio/src/utils/modeling_utils.py"));
        assert!(!a.covers("deepspeed", "llm_studio/srcx/a.py"));
        assert!(!a.covers("bitsandbytes", "llm_studio/src/optimizers.py"));
        let e = Allow::parse("deepspeed", "--allow-import").unwrap_err();
        assert!(e.to_string().contains("PKG:PATH"), "{e}");
    }

    #[test]
    fn record_names_modules_and_packages_not_metadata() {
        let d = tempfile::tempdir().unwrap();
        let info = Utf8Path::from_path(d.path())
            .unwrap()
            .join("x-1.0.dist-info");
        std::fs::create_dir(&info).unwrap();
        std::fs::write(
            info.join("RECORD"),
            "pynvml.py,sha256=a,1\nx-1.0.dist-info/METADATA,,\nfast.cpython-312-x86_64-linux-gnu.so,,\n\
             pkg/__init__.py,,\n__pycache__/pynvml.cpython-312.pyc,,\n../../bin/tool,,\nx.pth,,\n",
        )
        .unwrap();
        let names: Vec<String> = top_names(&info).into_iter().collect();
        assert_eq!(names, ["fast", "pkg", "pynvml"]);
    }
}
