//! Other files of the app's repository that pin a Python version (`.python-version`, CI
//! workflows, Dockerfiles, pre-commit), so moving the project to the policy's Python is
//! not silent. Read only: `port` reports them, it never edits them.

use camino::Utf8Path;
use serde::Serialize;

/// One line that pins another Python than the policy's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Pin {
    /// Relative to the project.
    pub file: String,
    pub line: usize,
    /// The `3.Y` the line pins.
    pub python: String,
    pub text: String,
}

/// The files that usually pin Python, relative to the project.
fn candidates(project: &Utf8Path) -> Vec<String> {
    let mut out = vec![
        ".python-version".to_string(),
        ".pre-commit-config.yaml".to_string(),
    ];
    for (dir, keep) in [
        (
            ".github/workflows",
            &(|n: &str| n.ends_with(".yml") || n.ends_with(".yaml")) as &dyn Fn(&str) -> bool,
        ),
        (".", &|n: &str| n.starts_with("Dockerfile")),
        ("docker", &|n: &str| n.starts_with("Dockerfile")),
    ] {
        let Ok(entries) = project.join(dir).read_dir_utf8() else {
            continue;
        };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file() && keep(e.file_name()))
            .map(|e| {
                if dir == "." {
                    e.file_name().to_string()
                } else {
                    format!("{dir}/{}", e.file_name())
                }
            })
            .collect();
        names.sort();
        out.extend(names);
    }
    out
}

/// Every line of those files that pins a Python 3 minor version other than `want`
/// (`"3.12"`).
pub fn stale_python(project: &Utf8Path, want: &str) -> Vec<Pin> {
    let mut out = Vec::new();
    for rel in candidates(project) {
        let Ok(text) = std::fs::read_to_string(project.join(&rel)) else {
            continue;
        };
        for (n, line) in text.lines().enumerate() {
            let found = if rel == ".python-version" {
                minor_at(line.trim()).map(|(v, _)| v)
            } else {
                pinned_in(line)
            };
            if let Some(v) = found
                && v != want
            {
                out.push(Pin {
                    file: rel.clone(),
                    line: n + 1,
                    python: v,
                    text: line.trim().to_string(),
                });
            }
        }
    }
    out
}

/// The `3.Y` a line pins after the word "python": `python-version: "3.10.11"`,
/// `python3.10`, `python310`, `python:3.11-slim`, `PYTHON_VERSION=3.10`.
fn pinned_in(line: &str) -> Option<String> {
    let lower = line.to_ascii_lowercase();
    let mut rest = lower.as_str();
    while let Some(i) = rest.find("python") {
        let after = &rest[i + "python".len()..];
        let after = after
            .strip_prefix("-version")
            .or_else(|| after.strip_prefix("_version"))
            .unwrap_or(after);
        let after = after.trim_start_matches([' ', ':', '=', '"', '\'', '-', '@']);
        if let Some((v, _)) = minor_at(after) {
            return Some(v);
        }
        rest = &rest[i + "python".len()..];
    }
    None
}

/// `3.10...`, `310...` at the start of `s`: the version and what follows it.
fn minor_at(s: &str) -> Option<(String, &str)> {
    let rest = s.strip_prefix('3')?;
    let rest = rest.strip_prefix('.').unwrap_or(rest);
    let digits = rest.chars().take_while(char::is_ascii_digit).count();
    if digits == 0 || digits > 2 {
        return None;
    }
    // A third component is fine (3.10.11); letters right after the minor are not (3.1x).
    let tail = &rest[digits..];
    if tail.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    Some((format!("3.{}", &rest[..digits]), tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_pins_the_app_has() {
        for (line, want) in [
            ("          python-version: 3.10.11", Some("3.10")),
            ("          python-version: \"3.10.11\"", Some("3.10")),
            (
                "FROM registry.invalid/thirdparty-chainguard-python310:latest-fips-dev",
                Some("3.10"),
            ),
            ("RUN apt-get install -y python3.11-venv", Some("3.11")),
            ("FROM python:3.12-slim", Some("3.12")),
            ("ARG PYTHON_VERSION=3.10", Some("3.10")),
            ("        language_version: python3.10", Some("3.10")),
            ("sudo apt-get install -y python3 python3-pip", None),
            ("RUN python -m venv /workspace/venv", None),
            ("uses: actions/setup-python@v5", None),
            ("python3 generate_pdf_doc.py", None),
        ] {
            assert_eq!(pinned_in(line).as_deref(), want, "{line}");
        }
    }

    #[test]
    fn scans_the_usual_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = Utf8Path::from_path(dir.path()).unwrap();
        std::fs::write(p.join(".python-version"), "3.10\n").unwrap();
        std::fs::create_dir_all(p.join(".github/workflows")).unwrap();
        std::fs::write(
            p.join(".github/workflows/test.yml"),
            "steps:\n  - uses: actions/setup-python@v5\n    with:\n      python-version: \"3.10.11\"\n",
        )
        .unwrap();
        std::fs::write(p.join("Dockerfile"), "FROM python:3.12-slim\n").unwrap();
        std::fs::write(p.join("notes.md"), "python3.9 is old\n").unwrap();
        let pins = stale_python(p, "3.12");
        let got: Vec<(&str, usize, &str)> = pins
            .iter()
            .map(|p| (p.file.as_str(), p.line, p.python.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (".python-version", 1, "3.10"),
                (".github/workflows/test.yml", 4, "3.10")
            ]
        );
    }
}
