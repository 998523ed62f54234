//! Whether uv.lock still matches pyproject.toml, as `uv lock --check` means it: the root
//! package's `[package.metadata]` against the project's requirements, extras and groups.

use std::collections::{BTreeMap, BTreeSet};

use pep508_rs::MarkerTree;

use super::{Lock, MetaReq, Metadata, Package};
use crate::names::{self, Os};
use crate::pep;

/// A usage error naming the lock and why it is stale, when it is: what `setup` and
/// `requirements` refuse to work from.
pub fn ensure_fresh(
    lock_path: &str,
    lock: &Lock,
    root: &Package,
    project: &crate::pyproject::Requirements,
) -> anyhow::Result<()> {
    let stale = stale_reasons(lock, root, project);
    if stale.is_empty() {
        return Ok(());
    }
    Err(crate::error::usage(format!(
        "{lock_path} is out of date with pyproject.toml ({}): run `cargo xtask lock`",
        stale.join("; ")
    )))
}

/// Why the lock no longer matches pyproject.toml, compared with the root package's
/// `[package.metadata]` (file times mean nothing after a clone). Empty when it matches.
pub fn stale_reasons(
    lock: &Lock,
    root: &Package,
    project: &crate::pyproject::Requirements,
) -> Vec<String> {
    let mut out = Vec::new();
    match (&project.requires_python, &lock.requires_python) {
        (Some(p), Some(l)) if !same_pythons(p, l) => out.push(format!(
            "requires-python is {p:?} in pyproject.toml but {l:?} in uv.lock"
        )),
        _ => {}
    }
    let Some(meta) = &root.metadata else {
        return out;
    };
    // Dynamic dependencies come from the build backend: `uv lock --check` builds the
    // project to compare them; offline, they are taken as the lock has them.
    // With only the dependencies dynamic, the extras (the entries with an `extra`
    // marker) are still compared.
    let dynamic = |field: &str| project.dynamic.iter().any(|d| d == field);
    if dynamic("optional-dependencies") {
        out.extend(stale_groups(project, meta));
        return out;
    }
    let deps_dynamic = dynamic("dependencies");
    let mut want = if deps_dynamic {
        Side::new()
    } else {
        side_of_pyproject(&project.dependencies, None)
    };
    for (extra, reqs) in &project.optional {
        for (k, (m, s)) in side_of_pyproject(reqs, Some(extra)) {
            let e = want
                .entry(k)
                .or_insert_with(|| (MarkerTree::FALSE, BTreeSet::new()));
            e.0.or(m);
            e.1.extend(s);
        }
    }
    let have = if deps_dynamic {
        let of_extras: Vec<MetaReq> = meta
            .requires_dist
            .iter()
            // An extra's entry is one no environment activates without an extra.
            .filter(|r| {
                r.marker
                    .as_deref()
                    .and_then(|m| pep::marker(m).ok())
                    .is_some_and(|m| !m.evaluate_extras(&[]))
            })
            .cloned()
            .collect();
        side_of_lock(&of_extras)
    } else {
        side_of_lock(&meta.requires_dist)
    };
    diff_sides("dependencies", &want, &have, &mut out);
    out.extend(stale_extras(project, meta));
    out.extend(stale_groups(project, meta));
    out
}

/// The requirements of one side of the comparison: name -> (union of markers, specifiers).
type Side = BTreeMap<String, (MarkerTree, BTreeSet<String>)>;

fn add_to_side(side: &mut Side, name: &str, marker: MarkerTree, spec: Option<String>) {
    let marker = system_as_platform(marker);
    let e = side
        .entry(names::normalize(name))
        .or_insert_with(|| (MarkerTree::FALSE, BTreeSet::new()));
    e.0.or(marker);
    if let Some(s) = spec.filter(|s| !s.is_empty()) {
        e.1.insert(s);
    }
}

/// pyproject.toml's requirements (of an extra, when given) as a side.
fn side_of_pyproject(reqs: &[String], extra: Option<&str>) -> Side {
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
        add_to_side(&mut side, req.name.as_ref(), m, spec);
    }
    side
}

/// The lock's recorded metadata as a side.
fn side_of_lock(reqs: &[MetaReq]) -> Side {
    let norm_spec = |s: &str| {
        pep::specifiers(s)
            .map(|v| v.to_string())
            .unwrap_or_else(|_| s.to_string())
    };
    let mut side = Side::new();
    for r in reqs {
        let m = r
            .marker
            .as_deref()
            .map_or(Ok(MarkerTree::TRUE), pep::marker)
            .unwrap_or(MarkerTree::TRUE);
        add_to_side(&mut side, &r.name, m, r.specifier.as_deref().map(norm_spec));
    }
    side
}

fn stale_extras(project: &crate::pyproject::Requirements, meta: &Metadata) -> Option<String> {
    let extras_want: BTreeSet<String> = project
        .optional
        .keys()
        .map(|k| names::normalize(k))
        .collect();
    let extras_have: BTreeSet<String> = meta
        .provides_extras
        .iter()
        .map(|k| names::normalize(k))
        .collect();
    // Locks from before uv recorded provides-extras say nothing about them.
    (!meta.provides_extras.is_empty() && extras_want != extras_have).then(|| {
        format!(
            "extras differ: pyproject.toml has [{}], uv.lock has [{}]",
            extras_want.into_iter().collect::<Vec<_>>().join(", "),
            extras_have.into_iter().collect::<Vec<_>>().join(", ")
        )
    })
}

fn stale_groups(project: &crate::pyproject::Requirements, meta: &Metadata) -> Vec<String> {
    let groups_want: BTreeMap<String, &Vec<String>> = project
        .groups
        .iter()
        .map(|(k, v)| (names::normalize(k), v))
        .collect();
    let groups_have: BTreeMap<String, &Vec<MetaReq>> = meta
        .requires_dev
        .iter()
        .map(|(k, v)| (names::normalize(k), v))
        .collect();
    let mut out = Vec::new();
    if groups_want.keys().ne(groups_have.keys()) {
        out.push(format!(
            "dependency groups differ: pyproject.toml has [{}], uv.lock has [{}]",
            groups_want.keys().cloned().collect::<Vec<_>>().join(", "),
            groups_have.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
        return out;
    }
    for (g, reqs) in &groups_want {
        let want = side_of_pyproject(reqs, None);
        let have = side_of_lock(groups_have[g]);
        diff_sides(&format!("dependency group {g}"), &want, &have, &mut out);
    }
    out
}

/// uv writes `platform_system` markers as the `sys_platform` they imply; compare them so.
fn system_as_platform(m: MarkerTree) -> MarkerTree {
    let text = match m.contents() {
        Some(c) => c.to_string(),
        None => return m,
    };
    if !text.contains("platform_system") {
        return m;
    }
    let mut t = text;
    for os in [Os::Macos, Os::Linux, Os::Windows] {
        let (system, platform) = (os.platform_system(), os.sys_platform());
        for op in ["==", "!="] {
            t = t.replace(
                &format!("platform_system {op} '{system}'"),
                &format!("sys_platform {op} '{platform}'"),
            );
        }
    }
    pep::marker(&t).unwrap_or(m)
}

/// Whether two requires-python ranges admit the same Pythons (`>=3.12,<3.13` is
/// `==3.12.*`), checked over 3.0-3.29 with a few patch levels.
fn same_pythons(a: &str, b: &str) -> bool {
    let (Ok(a), Ok(b)) = (pep::specifiers(a), pep::specifiers(b)) else {
        return a == b;
    };
    (0..30).all(|minor| {
        [0, 1, 2, 5, 10, 99].iter().all(|patch| {
            pep::version(&format!("3.{minor}.{patch}"))
                .map(|v| a.contains(&v) == b.contains(&v))
                .unwrap_or(true)
        })
    })
}

fn diff_sides(what: &str, want: &Side, have: &Side, out: &mut Vec<String>) {
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
