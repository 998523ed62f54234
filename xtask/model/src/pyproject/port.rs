//! Format-preserving edits of pyproject.toml (toml_edit). `port` computes the state the
//! policy wants and changes only the keys that differ: comments, key order, quoting and
//! blank lines elsewhere stay byte-identical, and a second run changes nothing.

use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use toml_edit::{Array, DocumentMut, Item, Table, Value};

use super::edit::*;
use super::parse;
use crate::error;
use crate::names;
use crate::pep;
use crate::policy::{Policy, Rule};

/// One change `port` makes, with the policy's reason.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Change {
    /// Where: a TOML path such as `tool.uv.sources.torch` or `project.dependencies`.
    pub location: String,
    /// What: e.g. `"bitsandbytes==0.47.0" -> "bitsandbytes==0.47.0 ; sys_platform != 'darwin'"`.
    pub change: String,
    pub reason: String,
}

/// Rewrite `text` to the policy's state. Returns the new text and what changed.
pub fn port(file: &str, text: &str, policy: &Policy) -> Result<(String, Vec<Change>)> {
    // The file's own conventions survive: a byte order mark, and CRLF line ends when
    // every line has them (lines port adds get them too).
    let (bom, body) = match text.strip_prefix('\u{feff}') {
        Some(rest) => ("\u{feff}", rest),
        None => ("", text),
    };
    let crlf = body.contains("\r\n") && body.matches('\n').count() == body.matches("\r\n").count();
    let (new, changes) = if crlf {
        let (new, changes) = port_lf(file, &body.replace("\r\n", "\n"), policy)?;
        (new.replace('\n', "\r\n"), changes)
    } else {
        port_lf(file, body, policy)?
    };
    Ok((format!("{bom}{new}"), changes))
}

fn port_lf(file: &str, text: &str, policy: &Policy) -> Result<(String, Vec<Change>)> {
    let mut doc = parse(file, text)?;
    let mut p = Porter {
        file,
        policy,
        changes: Vec::new(),
    };
    p.python(&mut doc)?;
    p.dependency_markers(&mut doc)?;
    p.groups(&mut doc)?;
    let (torch, torch_req) = torch_packages(&doc, policy);
    p.sources(&mut doc, &torch, torch_req.as_ref())?;
    p.uv_settings(&mut doc)?;
    p.pytest_markers(&mut doc)?;
    if !p.changes.is_empty() {
        plain_header_keys(&mut doc);
    }
    Ok((doc.to_string(), p.changes))
}

/// Clear the whitespace around the keys of the tables port writes to (`[tool.uv .sources]`
/// is valid TOML): toml_edit renders every header below a key with that key's first
/// spelling, so new headers would copy it and a second run would spell them otherwise.
fn plain_header_keys(doc: &mut DocumentMut) {
    let plain = |t: &mut dyn toml_edit::TableLike, key: &str| {
        if let Some(mut k) = t.key_mut(key) {
            k.leaf_decor_mut().clear();
            k.dotted_decor_mut().clear();
        }
    };
    let root = doc.as_table_mut();
    plain(root, "tool");
    if let Some(tool) = root.get_mut("tool").and_then(Item::as_table_like_mut) {
        for key in ["uv", "pytest"] {
            plain(tool, key);
            if let Some(t) = tool.get_mut(key).and_then(Item::as_table_like_mut) {
                for sub in ["sources", "index", "ini_options"] {
                    plain(t, sub);
                }
            }
        }
    }
}

struct Porter<'a> {
    file: &'a str,
    policy: &'a Policy,
    changes: Vec<Change>,
}

impl Porter<'_> {
    fn change(&mut self, location: &str, change: String, reason: &str) {
        self.changes.push(Change {
            location: location.to_string(),
            change,
            reason: reason.to_string(),
        });
    }

    fn bad(&self, what: String) -> anyhow::Error {
        error::usage(format!("{}: {what}", self.file))
    }

    // ---- Python version -------------------------------------------------------------

    fn python(&mut self, doc: &mut DocumentMut) -> Result<()> {
        let py = self.policy.python.clone();
        let project = doc
            .get_mut("project")
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| {
                self.bad("no [project] table: this is not a Python project's pyproject.toml".into())
            })?;
        let reason = format!("the policy's Python is {}", py.version);
        match project.get_mut("requires-python") {
            Some(item) => {
                let old = item.as_str().map(str::to_string);
                if old.as_deref() != Some(py.requires_python.as_str()) {
                    set_str(item, &py.requires_python);
                    self.change(
                        "project.requires-python",
                        format!("{} -> {:?}", show(old.as_deref()), py.requires_python),
                        &reason,
                    );
                }
            }
            None => {
                project.insert(
                    "requires-python",
                    toml_edit::value(py.requires_python.clone()),
                );
                self.change(
                    "project.requires-python",
                    format!("added {:?}", py.requires_python),
                    &reason,
                );
            }
        }
        let ruff = format!("py{}", py.version.replace('.', ""));
        self.set_if_present(doc, &["tool", "ruff", "target-version"], &ruff, &reason);
        self.set_if_present(
            doc,
            &["tool", "mypy", "python_version"],
            &py.version,
            &reason,
        );
        Ok(())
    }

    fn set_if_present(&mut self, doc: &mut DocumentMut, path: &[&str], want: &str, reason: &str) {
        let (key, parents) = path.split_last().expect("non-empty path");
        let mut t: &mut dyn toml_edit::TableLike = doc.as_table_mut();
        for part in parents {
            match t.get_mut(part).and_then(Item::as_table_like_mut) {
                Some(next) => t = next,
                None => return,
            }
        }
        if let Some(item) = t.get_mut(key) {
            let old = item.as_str().map(str::to_string);
            if old.as_deref() != Some(want) {
                set_str(item, want);
                self.change(
                    &path.join("."),
                    format!("{} -> {want:?}", show(old.as_deref())),
                    reason,
                );
            }
        }
    }

    // ---- Markers on dependencies -----------------------------------------------------

    fn dependency_markers(&mut self, doc: &mut DocumentMut) -> Result<()> {
        for (path, extra) in dependency_lists(doc) {
            let location = path.join(".");
            let Some(array) = get_array_mut(doc, &path) else {
                continue;
            };
            let mut i = 0;
            while i < array.len() {
                let Some(text) = array.get(i).and_then(Value::as_str).map(str::to_string) else {
                    i += 1; // `{ include-group = "..." }` and the like
                    continue;
                };
                let req = pep::requirement(&text).map_err(|e| {
                    error::usage(format!(
                        "{}: {location}: {text:?} is not a PEP 508 requirement: {e}",
                        self.file
                    ))
                })?;
                let Some(rule) = self.policy.rule_for(&req) else {
                    i += 1;
                    continue;
                };
                if rule.never_list {
                    remove_keeping_comments(array, i);
                    self.changes.push(Change {
                        location: location.clone(),
                        change: format!("removed {text:?}"),
                        reason: rule.reason.clone(),
                    });
                    continue;
                }
                if let Some(new) =
                    with_rule_marker(&text, &req, rule, self.policy, extra.as_deref())
                        .map_err(|e| anyhow!("{}: {location}: {e:#}", self.file))?
                {
                    set_value_str(array.get_mut(i).expect("index in range"), &new);
                    self.changes.push(Change {
                        location: location.clone(),
                        change: format!("{text:?} -> {new:?}"),
                        reason: rule.reason.clone(),
                    });
                }
                i += 1;
            }
        }
        Ok(())
    }

    // ---- Target-specific dependency groups ---------------------------------------------

    fn groups(&mut self, doc: &mut DocumentMut) -> Result<()> {
        for target in &self.policy.targets {
            let Some(group) = &target.group else { continue };
            let wanted = &self.policy.groups[group];
            if wanted.is_empty() {
                continue;
            }
            let groups = table_mut(self.file, doc.as_table_mut(), &["dependency-groups"])?;
            let array = groups
                .entry(group)
                .or_insert_with(|| Item::Value(Value::Array(Array::new())))
                .as_array_mut()
                .ok_or_else(|| {
                    error::usage(format!(
                        "{}: dependency-groups.{group} is not a list",
                        self.file
                    ))
                })?;
            for spec in wanted {
                let req = pep::requirement(spec)?;
                let present = array
                    .iter()
                    .filter_map(Value::as_str)
                    .any(|s| pep::requirement(s).is_ok_and(|r| r.name == req.name));
                if present {
                    continue;
                }
                let (base, _) = pep::split_marker(spec);
                let line = format!("{} ; {}", base.trim_end(), target.marker);
                push_line(array, &line);
                self.change(
                    &format!("dependency-groups.{group}"),
                    format!("added {line:?}"),
                    &format!("the policy installs {} only on {}", req.name, target.name),
                );
            }
        }
        Ok(())
    }

    // ---- [tool.uv.sources] and [[tool.uv.index]] -------------------------------------

    fn sources(
        &mut self,
        doc: &mut DocumentMut,
        torch: &[String],
        torch_req: Option<&pep508_rs::Requirement>,
    ) -> Result<()> {
        if torch.is_empty() {
            return Ok(());
        }
        let wanted = self.policy.torch_sources(torch_req);
        let mut replaced_indexes: Vec<String> = Vec::new();
        let why_split = format!(
            "one index per platform: {}",
            wanted
                .iter()
                .map(|(idx, m)| format!("{idx} where {m}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        {
            let sources = table_mut(self.file, doc.as_table_mut(), &["tool", "uv", "sources"])?;
            for name in torch {
                let key = sources
                    .iter()
                    .map(|(k, _)| k.to_string())
                    .find(|k| names::same(k, name))
                    .unwrap_or_else(|| name.clone());
                let existing = sources.get(&key).map(read_sources);
                if existing.as_ref() == Some(&wanted) {
                    continue;
                }
                let reason = match &existing {
                    Some(list) if list.len() == 1 && list[0].1.is_empty() => format!(
                        "a single source pins {name} to index {:?} on every platform, which has no wheels for some targets; {why_split}",
                        list[0].0
                    ),
                    Some(_) => why_split.clone(),
                    None => format!("{name} had no source and would come from PyPI; {why_split}"),
                };
                for (idx, _) in existing.iter().flatten() {
                    if !idx.is_empty() && !replaced_indexes.contains(idx) {
                        replaced_indexes.push(idx.clone());
                    }
                }
                let mut new = Value::Array(sources_array(&wanted));
                // The replaced line's trailing comment stays with it.
                if let Some(suffix) = sources
                    .get(&key)
                    .and_then(Item::as_value)
                    .and_then(|v| v.decor().suffix())
                    .and_then(|s| s.as_str())
                    .filter(|s| s.contains('#'))
                {
                    new.decor_mut().set_suffix(suffix.to_string());
                }
                sources.insert(&key, Item::Value(new));
                self.change(
                    &format!("tool.uv.sources.{key}"),
                    format!(
                        "{} -> {}",
                        existing.map_or("none".to_string(), |e| show_sources(&e)),
                        show_sources(&wanted)
                    ),
                    &reason,
                );
            }
        }
        let used: Vec<&str> = wanted.iter().map(|(i, _)| i.as_str()).collect();
        self.indexes(doc, &used, &replaced_indexes)
    }

    fn indexes(&mut self, doc: &mut DocumentMut, used: &[&str], replaced: &[String]) -> Result<()> {
        let referenced = referenced_indexes(doc);
        let uv = standard_table_mut(self.file, doc.as_table_mut(), &["tool", "uv"])?;
        let item = uv
            .entry("index")
            .or_insert_with(|| Item::ArrayOfTables(toml_edit::ArrayOfTables::new()));
        let Some(list) = item.as_array_of_tables_mut() else {
            return Err(error::usage(format!(
                "{}: tool.uv.index must be written as [[tool.uv.index]] tables",
                self.file
            )));
        };
        // Drop indexes that only served the sources we replaced.
        let mut i = 0;
        while i < list.len() {
            let t = list.get(i).expect("in range");
            let name = t
                .get("name")
                .and_then(Item::as_str)
                .unwrap_or_default()
                .to_string();
            let explicit = t.get("explicit").and_then(Item::as_bool).unwrap_or(false);
            if replaced.contains(&name)
                && !used.contains(&name.as_str())
                && !referenced.contains(&name)
            {
                list.remove(i);
                let why = if explicit {
                    "no source uses it any more".to_string()
                } else {
                    "no source uses it any more, and as a non-explicit index uv asked it for every package (dependency confusion)".to_string()
                };
                self.change("tool.uv.index", format!("removed index {name:?}"), &why);
                continue;
            }
            i += 1;
        }
        for name in used {
            self.policy_index(list, name);
        }
        Ok(())
    }

    /// The policy's index `name` in `[[tool.uv.index]]`: added, or its URL and
    /// `explicit = true` set.
    fn policy_index(&mut self, list: &mut toml_edit::ArrayOfTables, name: &str) {
        let index = &self.policy.indexes[name];
        let url = index.url.clone();
        let pos = list
            .iter()
            .position(|t| t.get("name").and_then(Item::as_str) == Some(name));
        let Some(pos) = pos else {
            let mut t = Table::new();
            t.insert("name", toml_edit::value(name));
            t.insert("url", toml_edit::value(url.clone()));
            t.insert("explicit", toml_edit::value(true));
            list.push(t);
            let why = format!(
                "{}; explicit, so only the packages sourced from it are looked up there",
                index.about
            );
            self.change(
                "tool.uv.index",
                format!("added index {name:?} = {url} (explicit)"),
                &why,
            );
            return;
        };
        let t = list.get_mut(pos).expect("in range");
        let old_url = t.get("url").and_then(Item::as_str).map(str::to_string);
        if old_url.as_deref().map(|u| u.trim_end_matches('/')) != Some(url.trim_end_matches('/')) {
            match t.get_mut("url") {
                Some(item) => set_str(item, &url),
                None => {
                    t.insert("url", toml_edit::value(url.clone()));
                }
            }
            self.change(
                "tool.uv.index",
                format!("index {name:?} url {} -> {url}", show(old_url.as_deref())),
                "the policy's URL for this index",
            );
        }
        if t.get("explicit").and_then(Item::as_bool) != Some(true) {
            t.insert("explicit", toml_edit::value(true));
            self.change(
                "tool.uv.index",
                format!("index {name:?} explicit = true"),
                "a non-explicit index is asked for every package (dependency confusion); explicit limits it to the packages sourced from it",
            );
        }
    }

    // ---- [tool.uv] environments, required-environments, index-strategy ------------------

    fn uv_settings(&mut self, doc: &mut DocumentMut) -> Result<()> {
        let envs = self.policy.environments();
        let required: Vec<String> = self
            .policy
            .targets
            .iter()
            .map(|t| t.marker.clone())
            .collect();
        let uv = table_mut(self.file, doc.as_table_mut(), &["tool", "uv"])?;
        if let Some(item) = uv.get("index-strategy")
            && item.as_str() == Some("unsafe-best-match")
        {
            uv.remove("index-strategy");
            self.change(
                "tool.uv.index-strategy",
                "removed \"unsafe-best-match\"".into(),
                "it lets any index serve any package; with explicit PyTorch indexes every other package comes from the default index",
            );
        }
        for (key, want, reason) in [
            (
                "environments",
                &envs,
                "lock only for the policy's operating systems; without it uv adds a fork where torch silently comes from PyPI",
            ),
            (
                "required-environments",
                &required,
                "one marker per target: uv lock fails when a package has no wheel for a target, instead of the install failing later on that machine",
            ),
        ] {
            let old: Option<Vec<String>> = uv.get(key).and_then(Item::as_array).map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            });
            if old.as_ref() == Some(want) {
                continue;
            }
            let array = string_array(want);
            match uv.get_mut(key) {
                Some(item) => {
                    let decor = item.as_value().map(|v| v.decor().clone());
                    *item = Item::Value(Value::Array(array));
                    if let (Some(d), Some(v)) = (decor, item.as_value_mut()) {
                        *v.decor_mut() = d;
                    }
                }
                None => {
                    uv.insert(key, Item::Value(Value::Array(array)));
                }
            }
            self.change(
                &format!("tool.uv.{key}"),
                format!(
                    "{} -> {want:?}",
                    old.map_or("none".into(), |o| format!("{o:?}"))
                ),
                reason,
            );
        }
        Ok(())
    }

    // ---- pytest markers --------------------------------------------------------------

    fn pytest_markers(&mut self, doc: &mut DocumentMut) -> Result<()> {
        let ini = table_mut(
            self.file,
            doc.as_table_mut(),
            &["tool", "pytest", "ini_options"],
        )?;
        let array = ini
            .entry("markers")
            .or_insert_with(|| Item::Value(Value::Array(Array::new())))
            .as_array_mut()
            .ok_or_else(|| {
                error::usage(format!(
                    "{}: tool.pytest.ini_options.markers is not a list",
                    self.file
                ))
            })?;
        let existing: Vec<String> = array
            .iter()
            .filter_map(Value::as_str)
            .map(|m| m.split(':').next().unwrap_or_default().trim().to_string())
            .collect();
        let mut added = Vec::new();
        for (name, about) in &self.policy.pytest.markers {
            if !existing.contains(name) {
                push_line(array, &format!("{name}: {about}"));
                added.push(name.clone());
            }
        }
        if !added.is_empty() {
            self.change(
                "tool.pytest.ini_options.markers",
                format!("registered {}", added.join(", ")),
                "platform and GPU markers, so tests can be selected per backend (and --strict-markers passes)",
            );
        }
        Ok(())
    }
}

/// The requirement text with the rule's condition added, or None when its marker
/// already implies the condition on every target.
fn with_rule_marker(
    text: &str,
    req: &pep508_rs::Requirement,
    rule: &Rule,
    policy: &Policy,
    extra: Option<&str>,
) -> Result<Option<String>> {
    let cond = rule
        .marker
        .as_deref()
        .expect("checked when the policy loaded");
    // Implied when no environment the lock covers satisfies the marker but not the
    // condition: `marker and universe and not condition` is unsatisfiable.
    let mut escape = req.marker.clone();
    escape.and(policy.universe.clone());
    escape.and(rule.marker_tree.negate());
    if escape.is_false() {
        return Ok(None);
    }
    let (base, existing) = pep::split_marker(text);
    let new = match existing.map(str::trim_end).filter(|m| !m.trim().is_empty()) {
        None => format!("{} ; {cond}", base.trim_end()),
        Some(m) if has_top_level_or(m) => {
            let lead = &m[..m.len() - m.trim_start().len()];
            format!("{base};{lead}({}) and ({cond})", m.trim_start())
        }
        Some(m) => format!("{base};{m} and ({cond})"),
    };
    // The result must mean exactly (existing and condition) wherever the lock applies.
    let parsed =
        pep::requirement(&new).map_err(|e| anyhow!("rewriting {text:?} gave {new:?}: {e}"))?;
    let mut want = req.marker.clone();
    want.and(rule.marker_tree.clone());
    let mut extra_true = parsed.marker.clone();
    extra_true.and(want.negate());
    extra_true.and(policy.universe.clone());
    let mut missing = want.clone();
    missing.and(parsed.marker.negate());
    missing.and(policy.universe.clone());
    let on_targets = policy.targets.iter().all(|t| {
        pep::evaluate(&parsed.marker, t.env(), extra) == pep::evaluate(&want, t.env(), extra)
    });
    if !extra_true.is_false() || !missing.is_false() || !on_targets {
        bail!(
            "rewriting {text:?} gave {new:?}, which does not mean the marker and the policy's condition"
        );
    }
    Ok(Some(new))
}

/// Whether a marker has an `or` outside parentheses and quotes (so appending
/// `and (...)` would bind to its last term only).
fn has_top_level_or(marker: &str) -> bool {
    let mut depth = 0i32;
    let mut quote: Option<char> = None;
    let bytes: Vec<char> = marker.chars().collect();
    for (i, &c) in bytes.iter().enumerate() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None => match c {
                '\'' | '"' => quote = Some(c),
                '(' => depth += 1,
                ')' => depth -= 1,
                // `or` as a word: after a space, `)` or a closing quote (compact
                // markers such as `sys_platform=='darwin'or ...` are valid PEP 508).
                'o' if depth == 0
                    && bytes.get(i + 1) == Some(&'r')
                    && i > 0
                    && (bytes[i - 1].is_whitespace() || "')\"".contains(bytes[i - 1]))
                    && bytes
                        .get(i + 2)
                        .is_some_and(|c| c.is_whitespace() || "('\"".contains(*c)) =>
                {
                    return true;
                }
                _ => {}
            },
        }
    }
    false
}

/// The torch packages the project depends on anywhere, normalised, and its first
/// requirement on torch itself (what chooses the torch index).
fn torch_packages(
    doc: &DocumentMut,
    policy: &Policy,
) -> (Vec<String>, Option<pep508_rs::Requirement>) {
    let mut names: Vec<String> = Vec::new();
    let mut torch_req: Option<pep508_rs::Requirement> = None;
    let first = policy.torch.packages.first().map(|t| names::normalize(t));
    let mut scan = |arr: Option<&Array>| {
        for s in arr
            .into_iter()
            .flat_map(|a| a.iter())
            .filter_map(Value::as_str)
        {
            if let Ok(r) = pep::requirement(s) {
                let n = r.name.to_string();
                if torch_req.is_none() && first.as_ref() == Some(&n) {
                    torch_req = Some(r.clone());
                }
                if policy
                    .torch
                    .packages
                    .iter()
                    .any(|t| names::normalize(t) == n)
                    && !names.contains(&n)
                {
                    names.push(n);
                }
            }
        }
    };
    for (path, _) in dependency_lists(doc) {
        scan(
            path.iter()
                .try_fold(doc.as_item(), |item, key| item.get(key))
                .and_then(Item::as_array),
        );
    }
    // Keep the policy's order (torch, torchvision, torchaudio).
    let order: Vec<String> = policy
        .torch
        .packages
        .iter()
        .map(|p| names::normalize(p))
        .collect();
    names.sort_by_key(|n| order.iter().position(|o| o == n));
    (names, torch_req)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy_with(from: &str, to: &str) -> Policy {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../templates/platforms.toml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        assert!(text.contains(from));
        Policy::parse(&text.replacen(from, to, 1)).unwrap()
    }

    const MINIMAL: &str =
        "[project]\nname = \"x\"\nversion = \"1\"\ndependencies = [\"torch==2.8.0\"]\n";

    #[test]
    fn target_groups_get_their_packages_with_the_target_marker() {
        let policy = policy_with("arm64-cuda = []", "arm64-cuda = [\"nvidia-ml-py>=12\"]");
        let (out, changes) = port("pyproject.toml", MINIMAL, &policy).unwrap();
        assert!(
            out.contains("arm64-cuda = [\n    \"nvidia-ml-py>=12 ; sys_platform == 'linux' and platform_machine == 'aarch64'\",\n]"),
            "{out}"
        );
        assert!(
            changes
                .iter()
                .any(|c| c.location == "dependency-groups.arm64-cuda")
        );
        // Idempotent, and an existing entry is left as the user wrote it.
        let (again, changes) = port("pyproject.toml", &out, &policy).unwrap();
        assert_eq!(again, out);
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn ported_markers_mean_what_the_policy_says_on_every_target() {
        let policy = policy_with("[python]", "[python]");
        let text = "[project]\nname = \"x\"\nversion = \"1\"\ndependencies = [\n  \"bitsandbytes==0.47.0 ; python_version >= '3.10'\",\n  \"deepspeed==0.17.5\",\n]\n";
        let (out, _) = port("pyproject.toml", text, &policy).unwrap();
        let doc = parse("pyproject.toml", &out).unwrap();
        let deps = crate::pyproject::requirements(&doc).dependencies;
        let on = |name: &str, target: &str| {
            let req = pep::requirement(deps.iter().find(|d| d.starts_with(name)).unwrap()).unwrap();
            let t = policy.targets.iter().find(|t| t.name == target).unwrap();
            pep::evaluate(&req.marker, t.env(), None)
        };
        assert!(
            on("bitsandbytes", "linux-x86_64-cuda") && on("bitsandbytes", "linux-aarch64-cuda")
        );
        assert!(!on("bitsandbytes", "macos-arm64-mps"));
        assert!(on("deepspeed", "linux-x86_64-cuda"));
        assert!(!on("deepspeed", "linux-aarch64-cuda") && !on("deepspeed", "macos-arm64-mps"));
    }

    #[test]
    fn top_level_or() {
        assert!(has_top_level_or(
            "sys_platform != 'darwin' or platform_machine != 'arm64'"
        ));
        assert!(!has_top_level_or("(a == 'b' or c == 'd') and e == 'f'"));
        assert!(!has_top_level_or("platform_machine == 'x or y'"));
        assert!(has_top_level_or(
            "sys_platform=='darwin'or platform_machine=='x86_64'"
        ));
        assert!(has_top_level_or("(a=='b')or(c=='d')"));
        assert!(!has_top_level_or("python_version >= '3.10'"));
    }
}
