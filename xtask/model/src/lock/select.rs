//! What `uv sync` installs from a lock, flag for flag: `--extra`, `--all-extras`,
//! `--no-extra`, `--group`, `--all-groups`, `--no-group`, `--only-group`, `--no-dev`,
//! `--only-dev`, `--no-default-groups`, with the project's default groups; and the
//! declared conflicts (`[tool.uv] conflicts`) that refuse a selection, in uv's words.

use anyhow::Result;

use super::Package;
use crate::error;
use crate::names::normalize;

/// The flags, as `uv sync` takes them.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub extras: Vec<String>,
    pub all_extras: bool,
    pub no_extras: Vec<String>,
    pub groups: Vec<String>,
    pub all_groups: bool,
    pub no_groups: Vec<String>,
    pub only_groups: Vec<String>,
    pub no_dev: bool,
    pub only_dev: bool,
    pub no_default_groups: bool,
    /// `[tool.uv] default-groups` from pyproject (uv's default: `["dev"]`; `"all"` is
    /// every group, expanded when read).
    pub default_groups: Option<Vec<String>>,
}

/// What the flags come to for one project: whether its own dependencies install
/// (`prod`), and which extras and groups (normalised names).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chosen {
    pub prod: bool,
    pub extras: Vec<String>,
    pub groups: Vec<String>,
}

/// One item of a declared conflict: an extra, a group, or a whole package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    Extra(String, String),
    Group(String, String),
    Project(String),
}

impl Item {
    /// How uv names the item inside lock markers (`extra == 'extra-4-demo-cpu'`): the
    /// kind, the package name's length, the package, the extra or group.
    pub fn encoded(&self) -> String {
        match self {
            Item::Extra(p, e) => format!("extra-{}-{p}-{e}", p.len()),
            Item::Group(p, g) => format!("group-{}-{p}-{g}", p.len()),
            Item::Project(p) => format!("project-{}-{p}", p.len()),
        }
    }

    fn shown(&self) -> String {
        match self {
            Item::Extra(p, e) => format!("`{p}[{e}]`"),
            Item::Group(p, g) => format!("`{p}:{g}`"),
            // uv lists the package itself without quotes.
            Item::Project(p) => p.clone(),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Item::Extra(..) => 0,
            Item::Group(..) => 1,
            Item::Project(..) => 2,
        }
    }
}

/// `[tool.uv] conflicts` as written: lists of `{ extra | group | package }` tables; an
/// item without `package` is the project's own.
pub fn conflicts_of(doc: &toml_edit::DocumentMut, project: &str) -> Vec<Vec<Item>> {
    let project = normalize(project);
    let Some(sets) = doc
        .get("tool")
        .and_then(|t| t.get("uv"))
        .and_then(|t| t.get("conflicts"))
        .and_then(toml_edit::Item::as_array)
    else {
        return Vec::new();
    };
    sets.iter()
        .filter_map(toml_edit::Value::as_array)
        .map(|set| {
            set.iter()
                .filter_map(toml_edit::Value::as_inline_table)
                .filter_map(|t| {
                    let get = |k: &str| t.get(k).and_then(|v| v.as_str()).map(normalize);
                    let package = get("package").unwrap_or_else(|| project.clone());
                    match (get("extra"), get("group")) {
                        (Some(e), _) => Some(Item::Extra(package, e)),
                        (None, Some(g)) => Some(Item::Group(package, g)),
                        (None, None) => t.get("package").map(|_| Item::Project(package)),
                    }
                })
                .collect()
        })
        .collect()
}

/// The extras and groups a project defines, by their normalised names.
struct Known {
    pkg: String,
    extras: Vec<String>,
    groups: Vec<String>,
}

impl Known {
    fn of(root: &Package) -> Known {
        Known {
            pkg: normalize(&root.name),
            extras: root
                .optional_dependencies
                .keys()
                .chain(root.metadata.iter().flat_map(|m| m.provides_extras.iter()))
                .map(|k| normalize(k))
                .collect(),
            groups: root
                .dev_dependencies
                .keys()
                .chain(root.metadata.iter().flat_map(|m| m.requires_dev.keys()))
                .map(|k| normalize(k))
                .collect(),
        }
    }

    /// The extras a flag names, each one the project defines (else uv's refusal).
    fn extras(&self, flag: &str, given: &[String]) -> Result<Vec<String>> {
        self.named(flag, given, &self.extras, |e, pkg, has| {
            format!(
                "Extra `{e}` is not defined in the `optional-dependencies` table for `{pkg}` (it has: {has})"
            )
        })
    }

    /// The groups a flag names, each one the project defines (else uv's refusal).
    fn groups(&self, flag: &str, given: &[String]) -> Result<Vec<String>> {
        self.named(flag, given, &self.groups, |g, _, has| {
            format!(
                "Group `{g}` is not defined in the project's `dependency-groups` table (it has: {has})"
            )
        })
    }

    fn named(
        &self,
        flag: &str,
        given: &[String],
        known: &[String],
        undefined: impl Fn(&str, &str, &str) -> String,
    ) -> Result<Vec<String>> {
        given
            .iter()
            .map(|name| {
                let n = normalize(name);
                if known.contains(&n) {
                    return Ok(n);
                }
                let why = undefined(name, &self.pkg, &listing(known));
                Err(error::usage(format!("{flag} {name}: {why}")))
            })
            .collect()
    }
}

impl Selection {
    /// The flags applied to `root`'s extras and groups, refused as uv refuses them: an
    /// extra or group the project does not define, or two sides of a declared conflict.
    pub fn choose(&self, root: &Package, conflicts: &[Vec<Item>]) -> Result<Chosen> {
        let known = Known::of(root);
        let groups = known.groups("--group", &self.groups)?;
        let mut no_groups = known.groups("--no-group", &self.no_groups)?;
        let mut only = known.groups("--only-group", &self.only_groups)?;
        let wanted = known.extras("--extra", &self.extras)?;
        let unwanted = known.extras("--no-extra", &self.no_extras)?;
        if self.only_dev {
            only.push("dev".into());
        }
        if self.no_dev {
            no_groups.push("dev".into());
        }
        let prod = only.is_empty();
        let defaults: Vec<String> = if self.no_default_groups || !prod {
            Vec::new()
        } else {
            self.default_groups
                .clone()
                .unwrap_or_else(|| vec!["dev".into()])
                .iter()
                .map(|g| normalize(g))
                .collect()
        };
        let included = |g: &String| {
            if !prod {
                return only.contains(g);
            }
            self.all_groups || groups.contains(g) || defaults.contains(g)
        };
        let mut chosen_groups: Vec<String> = Vec::new();
        for g in &known.groups {
            if included(g) && !no_groups.contains(g) && !chosen_groups.contains(g) {
                chosen_groups.push(g.clone());
            }
        }
        let mut chosen_extras: Vec<String> = Vec::new();
        if prod {
            for e in &known.extras {
                let on = (self.all_extras && !unwanted.contains(e)) || wanted.contains(e);
                if on && !chosen_extras.contains(e) {
                    chosen_extras.push(e.clone());
                }
            }
        }
        let chosen = Chosen {
            prod,
            extras: chosen_extras,
            groups: chosen_groups,
        };
        check_conflicts(&known.pkg, &chosen, conflicts)?;
        Ok(chosen)
    }
}

fn listing(names: &[String]) -> String {
    let mut v: Vec<&str> = names.iter().map(String::as_str).collect();
    v.sort_unstable();
    v.dedup();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// The encoded conflict items a choice activates on the project itself.
pub fn activated(pkg: &str, c: &Chosen) -> Vec<String> {
    let pkg = normalize(pkg);
    let mut out: Vec<String> = Vec::new();
    if c.prod {
        out.push(Item::Project(pkg.clone()).encoded());
        out.extend(
            c.extras
                .iter()
                .map(|e| Item::Extra(pkg.clone(), e.clone()).encoded()),
        );
    }
    out.extend(
        c.groups
            .iter()
            .map(|g| Item::Group(pkg.clone(), g.clone()).encoded()),
    );
    out
}

/// uv's refusal of a selection that enables two items of one declared conflict.
fn check_conflicts(pkg: &str, c: &Chosen, conflicts: &[Vec<Item>]) -> Result<()> {
    let on = |i: &Item| match i {
        Item::Extra(p, e) => p == pkg && c.extras.contains(e),
        Item::Group(p, g) => p == pkg && c.groups.contains(g),
        // The project itself is active whenever it is installed (not with --only-group).
        Item::Project(p) => p == pkg && c.prod,
    };
    for set in conflicts {
        let active: Vec<&Item> = set.iter().filter(|i| on(i)).collect();
        if active.len() < 2 {
            continue;
        }
        let extras: Vec<&str> = active
            .iter()
            .filter_map(|i| match i {
                Item::Extra(_, e) => Some(e.as_str()),
                _ => None,
            })
            .collect();
        let groups: Vec<&str> = active
            .iter()
            .filter_map(|i| match i {
                Item::Group(_, g) => Some(g.as_str()),
                _ => None,
            })
            .collect();
        let mut listed: Vec<&Item> = set.iter().collect();
        listed.sort_by(|a, b| a.rank().cmp(&b.rank()).then(a.shown().cmp(&b.shown())));
        let listed = listed
            .iter()
            .map(|i| i.shown())
            .collect::<Vec<_>>()
            .join(", ");
        let what = if extras.len() >= 2 {
            format!(
                "Extras `{}` and `{}` are incompatible with the declared conflicts",
                extras[0], extras[1]
            )
        } else if groups.len() >= 2 {
            format!(
                "Groups `{}` and `{}` are incompatible with the conflicts",
                groups[0], groups[1]
            )
        } else if let Some(Item::Project(p)) = active.iter().find(|i| matches!(i, Item::Project(_)))
        {
            match (extras.first(), groups.first()) {
                (Some(e), _) => format!(
                    "Extra `{e}` and package `{p}` are incompatible with the declared conflicts"
                ),
                (None, Some(g)) => format!(
                    "Group `{g}` and package `{p}` are incompatible with the declared conflicts"
                ),
                (None, None) => {
                    format!("Package `{p}` is incompatible with the declared conflicts")
                }
            }
        } else {
            format!(
                "Extra `{}` and group `{}` are incompatible with the declared conflicts",
                extras[0], groups[0]
            )
        };
        return Err(error::usage(format!(
            "{what}: {{{listed}}} (choose one side: drop an --extra/--group, or pass --no-extra/--no-group)"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root() -> Package {
        let text = r#"
version = 1
[[package]]
name = "demo-two"
version = "0.1.0"
source = { virtual = "." }
[package.optional-dependencies]
a = []
b = []
[package.dev-dependencies]
dev = []
lint = []
x = []
y = []
"#;
        super::super::parse("uv.lock", text)
            .unwrap()
            .package
            .remove(0)
    }

    fn sel() -> Selection {
        Selection {
            default_groups: Some(vec!["dev".into(), "lint".into()]),
            ..Selection::default()
        }
    }

    #[test]
    fn flags_mean_what_they_mean_to_uv() {
        let r = root();
        let groups = |s: Selection| s.choose(&r, &[]).unwrap().groups;
        assert_eq!(groups(sel()), ["dev", "lint"]);
        // --no-dev drops only dev; --no-default-groups drops the rest.
        assert_eq!(
            groups(Selection {
                no_dev: true,
                ..sel()
            }),
            ["lint"]
        );
        assert!(
            groups(Selection {
                no_default_groups: true,
                ..sel()
            })
            .is_empty()
        );
        // --no-group wins over --group and --all-groups.
        let s = Selection {
            all_groups: true,
            no_groups: vec!["x".into()],
            ..sel()
        };
        assert_eq!(groups(s), ["dev", "lint", "y"]);
        // --only-group / --only-dev: those groups, no project, no extras.
        let c = Selection {
            only_groups: vec!["x".into()],
            extras: vec!["a".into()],
            ..sel()
        }
        .choose(&r, &[])
        .unwrap();
        assert_eq!(
            (c.prod, c.groups, c.extras),
            (false, vec!["x".to_string()], vec![])
        );
        assert_eq!(
            groups(Selection {
                only_dev: true,
                ..sel()
            }),
            ["dev"]
        );
        let c = Selection {
            all_extras: true,
            no_extras: vec!["b".into()],
            ..sel()
        }
        .choose(&r, &[])
        .unwrap();
        assert_eq!(c.extras, ["a"]);
        let e = Selection {
            groups: vec!["nope".into()],
            ..sel()
        }
        .choose(&r, &[])
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "--group nope: Group `nope` is not defined in the project's `dependency-groups` table (it has: dev, lint, x, y)"
        );
    }

    #[test]
    fn a_conflict_with_the_project_itself_is_refused_while_the_project_is_installed() {
        let r = root();
        let doc: toml_edit::DocumentMut = "[tool.uv]\nconflicts = [[{ extra = \"a\" }, { package = \"demo-two\" }], [{ group = \"x\" }, { package = \"demo-two\" }]]\n"
            .parse()
            .unwrap();
        let c = conflicts_of(&doc, "demo_two");
        assert_eq!(c[0][1], Item::Project("demo-two".into()));
        let refuse = |s: Selection| s.choose(&r, &c).unwrap_err().to_string();
        assert!(refuse(Selection {
            all_extras: true,
            ..sel()
        })
        .starts_with(
            "Extra `a` and package `demo-two` are incompatible with the declared conflicts: {`demo-two[a]`, demo-two}"
        ));
        assert!(refuse(Selection {
            groups: vec!["x".into()],
            ..sel()
        })
        .starts_with(
            "Group `x` and package `demo-two` are incompatible with the declared conflicts: {`demo-two:x`, demo-two}"
        ));
        // Without the project (--only-group) nothing conflicts.
        let only = Selection {
            only_groups: vec!["x".into()],
            ..sel()
        }
        .choose(&r, &c)
        .unwrap();
        assert_eq!(only.groups, ["x"]);
        assert!(Selection { ..sel() }.choose(&r, &c).is_ok());
    }

    #[test]
    fn a_selection_across_a_declared_conflict_is_refused_in_uvs_words() {
        let r = root();
        let doc: toml_edit::DocumentMut =
            "[tool.uv]\nconflicts = [[{ group = \"x\" }, { group = \"y\" }, { extra = \"a\" }]]\n"
                .parse()
                .unwrap();
        let c = conflicts_of(&doc, "demo_two");
        assert_eq!(c[0][2], Item::Extra("demo-two".into(), "a".into()));
        let refuse = |s: Selection| s.choose(&r, &c).unwrap_err().to_string();
        assert!(
            refuse(Selection {
                all_groups: true,
                ..sel()
            })
            .starts_with(
                "Groups `x` and `y` are incompatible with the conflicts: {`demo-two[a]`, `demo-two:x`, `demo-two:y`}"
            )
        );
        assert!(
            refuse(Selection {
                groups: vec!["x".into()],
                extras: vec!["a".into()],
                ..sel()
            })
            .starts_with("Extra `a` and group `x` are incompatible with the declared conflicts")
        );
        assert!(
            Selection {
                groups: vec!["x".into()],
                ..sel()
            }
            .choose(&r, &c)
            .is_ok()
        );
        assert_eq!(
            Item::Group("open-instruct".into(), "cuda12".into()).encoded(),
            "group-13-open-instruct-cuda12"
        );
    }
}
