//! A package index's file list for one project, read the way installers read it: the
//! Simple API (PEP 503 HTML, PEP 691 JSON, whichever the index answers with), fetched by
//! `curl` (an argument vector; no TLS stack in this binary).

use std::time::Duration;

use anyhow::{Result, bail};
use serde::Deserialize;

use crate::error;
use crate::pep;
use crate::process::{Cmd, Probe};

/// One file of a project page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    pub filename: String,
    /// Yanked (PEP 592): installers skip it unless pinned.
    pub yanked: bool,
}

/// A project's page: its files, and which format the index answered in.
#[derive(Debug)]
pub struct Page {
    pub format: Format,
    pub files: Vec<File>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// PEP 691 `application/vnd.pypi.simple.v1+json`.
    Json,
    /// PEP 503 HTML.
    Html,
}

/// Why a page could not be read: the index did not answer (or not with a project page),
/// or it has no such project (HTTP 404 / 410).
#[derive(Debug)]
pub enum Unread {
    Unreachable(String),
    NotFound(String),
}

/// What `Accept` asks for: JSON first, HTML as the fallback (PEP 691's negotiation).
const ACCEPT: &str = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.1";

/// The project page of `name` (any spelling) on the index at `index` (its simple root).
pub fn project_url(index: &str, name: &str) -> String {
    format!(
        "{}/{}/",
        index.trim_end_matches('/'),
        crate::names::normalize(name)
    )
}

/// Read one project page. `Err` only when curl itself is absent (exit 3) or the tool
/// was interrupted; an index that does not answer is `Ok(Err(Unread))`.
pub fn read(index: &str, name: &str) -> Result<std::result::Result<Page, Unread>> {
    let url = project_url(index, name);
    let body = tempfile::NamedTempFile::new()?;
    let probe = Cmd::new("curl")
        .args(["--silent", "--show-error", "--location", "--compressed"])
        .args(["--connect-timeout", "15", "--max-time", "120"])
        .args(["--retry", "2", "--retry-connrefused"])
        .args(["--header", &format!("Accept: {ACCEPT}")])
        .args(["--write-out", "%{http_code} %{content_type}"])
        .arg("--output")
        .arg(body.path())
        .arg(&url)
        .probe(Duration::from_secs(300));
    let (status, ctype) = match &probe {
        Probe::NotFound => {
            return Err(error::absent(
                "policy check reads the indexes with curl, which is not on PATH: install curl (apt-get install curl)",
            ));
        }
        Probe::Interrupted => return Err(error::interrupted("interrupted")),
        Probe::Exited {
            code: Some(0),
            stdout,
            ..
        } => {
            let (code, ctype) = stdout.trim().split_once(' ').unwrap_or((stdout.trim(), ""));
            (code.to_string(), ctype.to_ascii_lowercase())
        }
        other => return Ok(Err(Unread::Unreachable(other.failure_line()))),
    };
    if status == "404" || status == "410" {
        return Ok(Err(Unread::NotFound(format!("{url}: HTTP {status}"))));
    }
    if !status.starts_with('2') {
        return Ok(Err(Unread::Unreachable(format!("{url}: HTTP {status}"))));
    }
    let text = fs_err::read_to_string(body.path())?;
    match parse(&text, &ctype) {
        Ok((format, files)) => Ok(Ok(Page { format, files })),
        Err(e) => Ok(Err(Unread::Unreachable(format!("{url}: {e:#}")))),
    }
}

/// A page's files, by its content type (PEP 691 JSON, else HTML).
pub fn parse(text: &str, content_type: &str) -> Result<(Format, Vec<File>)> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media == "application/vnd.pypi.simple.v1+json" || media == "application/json" {
        return Ok((Format::Json, parse_json(text)?));
    }
    if media.is_empty() || media.contains("html") {
        return Ok((Format::Html, parse_html(text)));
    }
    bail!("answered with {media:?}, not a simple index page (PEP 503 or PEP 691)")
}

#[derive(Deserialize)]
struct JsonPage {
    files: Vec<JsonFile>,
}

#[derive(Deserialize)]
struct JsonFile {
    filename: String,
    /// PEP 691: absent, `false`, `true` or the reason (a string, meaning yanked).
    #[serde(default)]
    yanked: serde_json::Value,
}

fn parse_json(text: &str) -> Result<Vec<File>> {
    let page: JsonPage = serde_json::from_str(text)
        .map_err(|e| anyhow::anyhow!("not a PEP 691 project page: {e}"))?;
    Ok(page
        .files
        .into_iter()
        .map(|f| File {
            filename: f.filename,
            yanked: !matches!(
                f.yanked,
                serde_json::Value::Null | serde_json::Value::Bool(false)
            ),
        })
        .collect())
}

/// PEP 503: every `<a href=...>filename</a>`; `data-yanked` marks a yanked file.
fn parse_html(text: &str) -> Vec<File> {
    let mut files = Vec::new();
    let lower = text.to_ascii_lowercase();
    let mut at = 0;
    while let Some(start) = lower[at..].find("<a").map(|i| at + i) {
        let after = lower.as_bytes().get(start + 2).copied();
        if !matches!(after, Some(b' ' | b'\t' | b'\n' | b'\r')) {
            at = start + 2;
            continue;
        }
        let Some(end) = lower[start..].find('>').map(|i| start + i) else {
            break;
        };
        let attrs = &text[start + 2..end];
        let close = lower[end..].find("</a").map_or(text.len(), |i| end + i);
        let label = unescape(text[end + 1..close].trim());
        let href = attribute(attrs, "href").unwrap_or_default();
        let from_href = crate::lock::tags::filename_of(&href);
        let filename = if label.is_empty() { from_href } else { label };
        if !filename.is_empty() {
            files.push(File {
                filename,
                yanked: attribute(attrs, "data-yanked").is_some(),
            });
        }
        at = close;
    }
    files
}

/// An attribute's value in an HTML start tag's attribute text ("" for a bare one).
fn attribute(attrs: &str, name: &str) -> Option<String> {
    let lower = attrs.to_ascii_lowercase();
    let mut at = 0;
    while let Some(i) = lower[at..].find(name).map(|i| at + i) {
        let before_ok = i == 0 || lower.as_bytes()[i - 1].is_ascii_whitespace();
        let rest = &attrs[i + name.len()..];
        let trimmed = rest.trim_start();
        let ends_name = rest
            .chars()
            .next()
            .is_none_or(|c| c == '=' || c.is_ascii_whitespace() || c == '/');
        if before_ok && ends_name {
            let Some(value) = trimmed.strip_prefix('=') else {
                return Some(String::new());
            };
            let value = value.trim_start();
            let v = match value.chars().next() {
                Some(q @ ('"' | '\'')) => value[1..].split(q).next().unwrap_or(""),
                _ => value.split_whitespace().next().unwrap_or(""),
            };
            return Some(unescape(v));
        }
        at = i + name.len();
    }
    None
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&")
}

/// The version a distribution file is of: `{name}-{version}-...whl`, or an sdist's
/// `{name}-{version}.tar.gz` / `.zip`. None for other files and unparsable versions.
pub fn file_version(filename: &str, name: &str) -> Option<pep508_rs::pep440_rs::Version> {
    let stem = if let Some(s) = filename.strip_suffix(".whl") {
        let mut parts = s.splitn(3, '-');
        let _ = parts.next()?;
        return pep::version(parts.next()?).ok();
    } else if let Some(s) = filename.strip_suffix(".tar.gz") {
        s
    } else {
        filename.strip_suffix(".zip")?
    };
    // An sdist's name part may itself hold dashes: strip the name (any spelling).
    let want = crate::names::normalize(name);
    for (i, _) in stem.match_indices('-') {
        if crate::names::normalize(&stem[..i]) == want {
            return pep::version(&stem[i + 1..]).ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_pages_as_pep_503_writes_them() {
        let html = r#"<!DOCTYPE html><html><body><h1>Links for triton</h1>
<a href="https://files.example.invalid/t/triton-3.5.0-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl#sha256=ab" data-requires-python="&gt;=3.9">triton-3.5.0-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl</a><br/>
<A HREF='../../files/triton-3.4.0-cp312-cp312-manylinux_2_27_x86_64.whl' data-yanked="">triton-3.4.0-cp312-cp312-manylinux_2_27_x86_64.whl</A>
<a href="/x/triton-3.3.0.tar.gz" data-yanked="broken build"></a>
<abbr>not a link</abbr>
</body></html>"#;
        let (format, files) = parse(html, "text/html; charset=utf-8").unwrap();
        assert_eq!(format, Format::Html);
        let got: Vec<(&str, bool)> = files
            .iter()
            .map(|f| (f.filename.as_str(), f.yanked))
            .collect();
        assert_eq!(
            got,
            [
                (
                    "triton-3.5.0-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
                    false
                ),
                ("triton-3.4.0-cp312-cp312-manylinux_2_27_x86_64.whl", true),
                ("triton-3.3.0.tar.gz", true),
            ]
        );
    }

    #[test]
    fn json_pages_as_pep_691_writes_them() {
        let json = r#"{"meta":{"api-version":"1.1"},"name":"x","versions":["1.0"],"files":[
            {"filename":"x-1.0-py3-none-any.whl","url":"u","hashes":{}},
            {"filename":"x-1.0.tar.gz","url":"u","hashes":{},"yanked":"bad"},
            {"filename":"x-0.9.tar.gz","url":"u","hashes":{},"yanked":true},
            {"filename":"x-0.8.tar.gz","url":"u","hashes":{},"yanked":false}]}"#;
        let (format, files) = parse(json, "application/vnd.pypi.simple.v1+json").unwrap();
        assert_eq!(format, Format::Json);
        let yanked: Vec<bool> = files.iter().map(|f| f.yanked).collect();
        assert_eq!(yanked, [false, true, true, false]);
        assert!(parse("{}", "application/vnd.pypi.simple.v1+json").is_err());
        assert!(parse("x", "image/png").is_err());
    }

    #[test]
    fn versions_of_wheels_and_sdists() {
        let v = |f: &str, n: &str| file_version(f, n).map(|v| v.to_string());
        assert_eq!(
            v(
                "torch-2.8.0+cu128-cp312-cp312-manylinux_2_28_x86_64.whl",
                "torch"
            )
            .as_deref(),
            Some("2.8.0+cu128")
        );
        assert_eq!(
            v("flash_attn-2.8.3.tar.gz", "flash-attn").as_deref(),
            Some("2.8.3")
        );
        assert_eq!(
            v("flash-attn-2.8.3.tar.gz", "flash_attn").as_deref(),
            Some("2.8.3")
        );
        assert_eq!(v("x-1.0.zip", "x").as_deref(), Some("1.0"));
        assert_eq!(v("x-1.0.exe", "x"), None);
        assert_eq!(v("x-notaversion.tar.gz", "x"), None);
        assert_eq!(
            project_url("http://127.0.0.1:1/simple/", "Flash_Attn"),
            "http://127.0.0.1:1/simple/flash-attn/"
        );
    }
}
