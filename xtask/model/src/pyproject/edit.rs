//! toml_edit helpers that keep a document's formatting (arrays one item a line with
//! their comments, tables found or made, strings replaced in place), and the readers of
//! the parts port compares: the requirement lists and `[tool.uv.sources]`.

use anyhow::Result;
use toml_edit::{Array, DocumentMut, InlineTable, Item, Table, Value};

use crate::error;

pub(super) fn sources_array(list: &[(String, String)]) -> Array {
    let mut a = Array::new();
    for (index, marker) in list {
        let mut t = InlineTable::new();
        t.insert("index", index.as_str().into());
        t.insert("marker", marker.as_str().into());
        t.fmt();
        let mut v = Value::InlineTable(t);
        v.decor_mut().set_prefix("\n    ");
        a.push_formatted(v);
    }
    a.set_trailing_comma(true);
    a.set_trailing("\n");
    a
}

/// A string list, one item per line when it would be long.
pub(super) fn string_array(items: &[String]) -> Array {
    let mut a: Array = items.iter().map(String::as_str).collect();
    let long = items.iter().map(|s| s.len() + 4).sum::<usize>() > 70;
    if long {
        for v in a.iter_mut() {
            v.decor_mut().set_prefix("\n    ");
            v.decor_mut().set_suffix("");
        }
        a.set_trailing_comma(true);
        a.set_trailing("\n");
    }
    a
}

/// Append a string to a list, following the list's layout: one item per line stays so;
/// an inline list stays inline unless it would grow past a readable width.
pub(super) fn push_line(array: &mut Array, text: &str) {
    let is_multiline = |a: &Array| {
        a.is_empty()
            || a.iter().any(|v| {
                v.decor()
                    .prefix()
                    .and_then(|p| p.as_str())
                    .is_some_and(|p| p.contains('\n'))
            })
    };
    if !is_multiline(array) {
        array.push(text);
        if array.to_string().len() <= 80 {
            return;
        }
        // Too long for one line: lay every item out on its own line.
        for v in array.iter_mut() {
            v.decor_mut().set_prefix("\n    ");
            v.decor_mut().set_suffix("");
        }
        array.set_trailing_comma(true);
        array.set_trailing("\n");
        return;
    }
    let indent = array
        .iter()
        .filter_map(|v| v.decor().prefix().and_then(|p| p.as_str()))
        .find(|p| p.contains('\n'))
        .map_or("\n    ".to_string(), |p| {
            format!("\n{}", p.rsplit('\n').next().unwrap_or("    "))
        });
    // A comment after the last item's comma is stored as the list's trailing text: it
    // belongs to that item's line, so the new item goes after it.
    let trailing = array.trailing().as_str().unwrap_or_default().to_string();
    let comment = match trailing.find('\n') {
        Some(n) if trailing[..n].contains('#') => {
            array.set_trailing(&trailing[n..]);
            trailing[..n].to_string()
        }
        None if trailing.contains('#') => {
            array.set_trailing("\n");
            trailing.clone()
        }
        _ => String::new(),
    };
    let mut v = Value::from(text);
    v.decor_mut().set_prefix(format!("{comment}{indent}"));
    array.push_formatted(v);
    array.set_trailing_comma(true);
    if !array.trailing().as_str().is_some_and(|t| t.contains('\n')) {
        array.set_trailing("\n");
    }
}

/// Remove item `i`, keeping the comment that ended the previous line (toml_edit stores
/// it in the removed item's prefix) and dropping only the removed item's own line.
pub(super) fn remove_keeping_comments(array: &mut Array, i: usize) {
    let removed = array.remove(i);
    let prefix = removed
        .decor()
        .prefix()
        .and_then(|p| p.as_str())
        .unwrap_or_default()
        .to_string();
    let Some(cut) = prefix.rfind('\n') else {
        return; // inline list: nothing to carry over
    };
    let head = &prefix[..cut]; // the rest of the previous line, e.g. "   # a comment"
    let join = |after: &str| match after.find('\n') {
        Some(n) => format!("{head}{}", &after[n..]),
        None => format!("{head}\n{after}"),
    };
    match array.get_mut(i) {
        Some(next) => {
            let after = next
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .unwrap_or_default()
                .to_string();
            next.decor_mut().set_prefix(join(&after));
        }
        None => {
            let after = array.trailing().as_str().unwrap_or_default().to_string();
            array.set_trailing(join(&after));
        }
    }
}

pub(super) fn get_array_mut<'a>(
    doc: &'a mut DocumentMut,
    path: &[String],
) -> Option<&'a mut Array> {
    let (last, parents) = path.split_last()?;
    let mut t: &mut dyn toml_edit::TableLike = doc.as_table_mut();
    for part in parents {
        t = t.get_mut(part)?.as_table_like_mut()?;
    }
    t.get_mut(last)?.as_array_mut()
}

/// The table at `path`, creating missing ones (implicit parents, so `[tool.uv.sources]`
/// is written without empty `[tool]` headers). Inline tables on the way are used as they
/// are (`tool = { uv = { sources = {...} } }`); missing parts under one are inline too.
pub(super) fn table_mut<'a>(
    file: &str,
    root: &'a mut Table,
    path: &[&str],
) -> Result<&'a mut dyn toml_edit::TableLike> {
    let mut t: &mut dyn toml_edit::TableLike = root;
    let mut inline = false;
    for (i, part) in path.iter().enumerate() {
        let item = t.entry(part).or_insert_with(|| {
            if inline {
                Item::Value(Value::InlineTable(toml_edit::InlineTable::new()))
            } else {
                let mut n = Table::new();
                n.set_implicit(i + 1 < path.len());
                Item::Table(n)
            }
        });
        inline = item.is_inline_table();
        t = item
            .as_table_like_mut()
            .ok_or_else(|| not_a_table(file, &path[..=i]))?;
    }
    Ok(t)
}

/// Like [`table_mut`], for what only a standard table can hold (an array of tables):
/// inline tables on the path become standard tables, with the same content.
pub(super) fn standard_table_mut<'a>(
    file: &str,
    root: &'a mut Table,
    path: &[&str],
) -> Result<&'a mut Table> {
    let mut t = root;
    for (i, part) in path.iter().enumerate() {
        let item = t.entry(part).or_insert_with(|| {
            let mut n = Table::new();
            n.set_implicit(i + 1 < path.len());
            Item::Table(n)
        });
        if item.is_inline_table()
            && let Item::Value(Value::InlineTable(it)) = std::mem::take(item)
        {
            *item = Item::Table(it.into_table());
        }
        t = item
            .as_table_mut()
            .ok_or_else(|| not_a_table(file, &path[..=i]))?;
    }
    Ok(t)
}

pub(super) fn not_a_table(file: &str, path: &[&str]) -> anyhow::Error {
    error::usage(format!(
        "{file}: {} is not a table (write it as [{}])",
        path.join("."),
        path.join(".")
    ))
}

/// Replace a string value keeping its surrounding whitespace and comments.
pub(super) fn set_str(item: &mut Item, new: &str) {
    match item.as_value_mut() {
        Some(v) => set_value_str(v, new),
        None => *item = toml_edit::value(new),
    }
}

pub(super) fn set_value_str(v: &mut Value, new: &str) {
    let decor = v.decor().clone();
    *v = Value::from(new);
    *v.decor_mut() = decor;
}

pub(super) fn show(old: Option<&str>) -> String {
    old.map_or("none".to_string(), |o| format!("{o:?}"))
}

/// Where pyproject.toml lists requirements, as key paths: `[project] dependencies`, each
/// extra of `[project.optional-dependencies]` (with its name) and each dependency group.
pub(super) fn dependency_lists(doc: &DocumentMut) -> Vec<(Vec<String>, Option<String>)> {
    let mut lists = vec![(vec!["project".into(), "dependencies".into()], None)];
    let table = |path: &[&str]| {
        path.iter()
            .try_fold(doc.as_item(), |item, key| item.get(key))
            .and_then(Item::as_table_like)
            .map(|t| t.iter().map(|(k, _)| k.to_string()).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    for extra in table(&["project", "optional-dependencies"]) {
        let path = vec![
            "project".into(),
            "optional-dependencies".into(),
            extra.clone(),
        ];
        lists.push((path, Some(extra)));
    }
    for group in table(&["dependency-groups"]) {
        lists.push((vec!["dependency-groups".into(), group], None));
    }
    lists
}

/// A source value as (index, marker) pairs; non-index sources (url, git, path) read as
/// an empty index so they never compare equal to the policy's.
pub(super) fn read_sources(item: &Item) -> Vec<(String, String)> {
    let one = |t: &dyn toml_edit::TableLike| {
        (
            t.get("index")
                .and_then(Item::as_str)
                .unwrap_or_default()
                .to_string(),
            t.get("marker")
                .and_then(Item::as_str)
                .unwrap_or_default()
                .to_string(),
        )
    };
    let mut out: Vec<(String, String)> = match item {
        Item::Value(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_inline_table)
            .map(|t| one(t))
            .collect(),
        other => other
            .as_table_like()
            .map(|t| vec![one(t)])
            .unwrap_or_default(),
    };
    out.sort();
    out
}

pub(super) fn show_sources(list: &[(String, String)]) -> String {
    list.iter()
        .map(|(i, m)| {
            if m.is_empty() {
                format!("{{ index = {i:?} }}")
            } else {
                format!("{{ index = {i:?}, marker = {m:?} }}")
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Index names that `[tool.uv.sources]` refers to.
pub(super) fn referenced_indexes(doc: &DocumentMut) -> Vec<String> {
    let Some(sources) = doc
        .get("tool")
        .and_then(|t| t.get("uv"))
        .and_then(|t| t.get("sources"))
        .and_then(Item::as_table_like)
    else {
        return Vec::new();
    };
    sources
        .iter()
        .flat_map(|(_, v)| read_sources(v))
        .map(|(i, _)| i)
        .filter(|i| !i.is_empty())
        .collect()
}
