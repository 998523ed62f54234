//! pyproject.toml: reading what it asks for (name, requirements, extras, groups, markers)
//! and checking its shape; `port` rewrites it for the policy's targets, with `edit`'s
//! format-preserving toml_edit helpers.

mod edit;
mod port;

pub use port::{Change, port};

use anyhow::Result;
use toml_edit::{DocumentMut, Item, Value};

use crate::error;
use crate::names;

/// What pyproject.toml asks for, as the lock records it.
#[derive(Debug, Default)]
pub struct Requirements {
    pub name: Option<String>,
    pub version: Option<String>,
    pub requires_python: Option<String>,
    pub dependencies: Vec<String>,
    /// `[project] dynamic`: fields the build backend fills in (then uv.lock's
    /// requires-dist is the backend's answer, which only a build can check).
    pub dynamic: Vec<String>,
    pub optional: indexmap::IndexMap<String, Vec<String>>,
    pub groups: indexmap::IndexMap<String, Vec<String>>,
    /// `[tool.uv] default-groups`, when set.
    pub default_groups: Option<Vec<String>>,
    /// `[tool.pytest.ini_options] markers`, as written ("name: description").
    pub pytest_markers: Vec<String>,
    /// `[tool.xtask] entry-modules`: the modules the app starts from (validate imports
    /// them), when the project names its own instead of the policy's.
    pub entry_modules: Option<Vec<String>>,
    /// `[tool.xtask] allow-imports`: `PKG:PATH` imports the import audit accepts.
    pub allow_imports: Vec<String>,
}

pub fn requirements(doc: &DocumentMut) -> Requirements {
    let strings = |item: Option<&Item>| -> Vec<String> {
        item.and_then(Item::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let project = doc.get("project");
    let table_of_lists = |item: Option<&Item>| {
        let mut m = indexmap::IndexMap::new();
        if let Some(t) = item.and_then(Item::as_table_like) {
            for (k, v) in t.iter() {
                m.insert(k.to_string(), strings(Some(v)));
            }
        }
        m
    };
    let string = |key: &str| {
        project
            .and_then(|p| p.get(key))
            .and_then(Item::as_str)
            .map(str::to_string)
    };
    Requirements {
        name: string("name"),
        version: string("version"),
        requires_python: string("requires-python"),
        dependencies: strings(project.and_then(|p| p.get("dependencies"))),
        dynamic: strings(project.and_then(|p| p.get("dynamic"))),
        optional: table_of_lists(project.and_then(|p| p.get("optional-dependencies"))),
        groups: dependency_groups(doc),
        default_groups: {
            let v = doc
                .get("tool")
                .and_then(|t| t.get("uv"))
                .and_then(|t| t.get("default-groups"));
            match v {
                // `default-groups = "all"`: every group the project defines.
                Some(v) if v.as_str() == Some("all") => Some(
                    doc.get("dependency-groups")
                        .and_then(Item::as_table_like)
                        .map(|t| t.iter().map(|(k, _)| k.to_string()).collect())
                        .unwrap_or_default(),
                ),
                Some(v) => v.as_array().map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                }),
                None => None,
            }
        },
        pytest_markers: strings(
            doc.get("tool")
                .and_then(|t| t.get("pytest"))
                .and_then(|t| t.get("ini_options"))
                .and_then(|t| t.get("markers")),
        ),
        entry_modules: {
            let v = doc
                .get("tool")
                .and_then(|t| t.get("xtask"))
                .and_then(|t| t.get("entry-modules"));
            v.map(|v| strings(Some(v)))
        },
        allow_imports: strings(
            doc.get("tool")
                .and_then(|t| t.get("xtask"))
                .and_then(|t| t.get("allow-imports")),
        ),
    }
}

/// `[dependency-groups]` as uv records them in a lock: `{ include-group = "..." }`
/// entries expanded (a cycle stops), the deprecated `[tool.uv] dev-dependencies` joined
/// to `dev`.
fn dependency_groups(doc: &DocumentMut) -> indexmap::IndexMap<String, Vec<String>> {
    let table = doc.get("dependency-groups").and_then(Item::as_table_like);
    let entries = |name: &str| -> Vec<Value> {
        table
            .and_then(|t| t.iter().find(|(k, _)| crate::names::same(k, name)))
            .and_then(|(_, v)| v.as_array())
            .map(|a| a.iter().cloned().collect())
            .unwrap_or_default()
    };
    fn expand(
        name: &str,
        entries: &dyn Fn(&str) -> Vec<Value>,
        seen: &mut Vec<String>,
        out: &mut Vec<String>,
    ) {
        if seen.iter().any(|s| s == name) {
            return;
        }
        seen.push(name.to_string());
        for v in entries(name) {
            match &v {
                Value::String(s) => out.push(s.value().clone()),
                Value::InlineTable(t) => {
                    if let Some(inc) = t.get("include-group").and_then(Value::as_str) {
                        expand(inc, entries, seen, out);
                    }
                }
                _ => {}
            }
        }
    }
    let mut groups = indexmap::IndexMap::new();
    for (name, _) in table.iter().flat_map(|t| t.iter()) {
        let mut out = Vec::new();
        expand(name, &entries, &mut Vec::new(), &mut out);
        groups.insert(name.to_string(), out);
    }
    let legacy = doc
        .get("tool")
        .and_then(|t| t.get("uv"))
        .and_then(|t| t.get("dev-dependencies"))
        .and_then(Item::as_array);
    if let Some(a) = legacy {
        let dev = groups.entry("dev".to_string()).or_insert_with(Vec::new);
        dev.extend(a.iter().filter_map(Value::as_str).map(str::to_string));
    }
    groups
}

/// Read `<dir>/pyproject.toml` and what it asks for; unreadable or malformed is a usage error.
pub fn load_requirements(dir: &camino::Utf8Path) -> Result<Requirements> {
    let path = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| error::usage(format!("{path}: cannot read: {e}")))?;
    Ok(requirements(&parse(path.as_str(), &text)?))
}

/// Parse pyproject text; syntax errors carry `file:line:col`. A UTF-8 byte order mark
/// is allowed (editors on Windows write one).
pub fn parse(file: &str, text: &str) -> Result<DocumentMut> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc = text.parse::<DocumentMut>().map_err(|e| {
        let msg = format!("invalid TOML: {}", e.message().trim());
        error::usage(names::toml_error(file, text, e.span(), &msg))
    })?;
    check_shapes(file, &doc)?;
    Ok(doc)
}

/// What a TOML value is, for messages.
pub(super) fn kind(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Table(_) | Item::Value(Value::InlineTable(_)) => "a table",
        Item::ArrayOfTables(_) => "an array of tables",
        Item::Value(Value::String(_)) => "a string",
        Item::Value(Value::Integer(_)) | Item::Value(Value::Float(_)) => "a number",
        Item::Value(Value::Boolean(_)) => "a boolean",
        Item::Value(Value::Datetime(_)) => "a date",
        Item::Value(Value::Array(_)) => "a list",
    }
}

/// The fields the commands read have the types PEP 621 / PEP 735 give them; anything
/// else is one line naming the file and the field (exit 2), never a silent skip.
fn check_shapes(file: &str, doc: &DocumentMut) -> Result<()> {
    let bad = |field: &str, want: &str, found: &str| {
        Err(error::usage(format!(
            "{file}: {field} must be {want} (found {found})"
        )))
    };
    let list_of_strings = |field: &str, item: &Item, allow_tables: bool| -> Result<()> {
        let Some(a) = item.as_array() else {
            return bad(field, "a list of strings", kind(item));
        };
        for (i, v) in a.iter().enumerate() {
            let ok = v.is_str() || (allow_tables && v.is_inline_table());
            if !ok {
                let found = kind(&Item::Value(v.clone()));
                return bad(
                    field,
                    "a list of strings",
                    &format!("{found} as item {}", i + 1),
                );
            }
        }
        Ok(())
    };
    if let Some(project) = doc.get("project") {
        let Some(p) = project.as_table_like() else {
            return bad("[project]", "a table", kind(project));
        };
        for key in ["name", "version", "requires-python"] {
            if let Some(v) = p.get(key)
                && !v.is_str()
            {
                return bad(&format!("[project] {key}"), "a string", kind(v));
            }
        }
        if let Some(deps) = p.get("dependencies") {
            list_of_strings("[project] dependencies", deps, false)?;
        }
        if let Some(opt) = p.get("optional-dependencies") {
            let Some(t) = opt.as_table_like() else {
                return bad("[project.optional-dependencies]", "a table", kind(opt));
            };
            for (k, v) in t.iter() {
                list_of_strings(&format!("[project.optional-dependencies] {k}"), v, false)?;
            }
        }
    }
    if let Some(groups) = doc.get("dependency-groups") {
        let Some(t) = groups.as_table_like() else {
            return bad("[dependency-groups]", "a table", kind(groups));
        };
        for (k, v) in t.iter() {
            list_of_strings(&format!("[dependency-groups] {k}"), v, true)?;
        }
    }
    Ok(())
}
