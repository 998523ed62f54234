//! PEP 508 requirements and markers, PEP 440 versions: thin helpers over pep508_rs so
//! the rest of the code speaks in targets, not marker environments.

use std::str::FromStr;

use anyhow::{Result, anyhow};
use pep508_rs::pep440_rs::{Operator, Version, VersionSpecifiers};
use pep508_rs::{ExtraName, MarkerEnvironment, MarkerEnvironmentBuilder, MarkerTree, Requirement};

/// A marker environment for a platform (`sys_platform`, `platform_machine`) and a Python
/// `X.Y` version. Fields no policy marker uses get CPython's usual values.
pub fn environment(sys_platform: &str, machine: &str, python: &str) -> Result<MarkerEnvironment> {
    let system = crate::names::Os::from_sys_platform(sys_platform)
        .map_or(sys_platform, |os| os.platform_system());
    let full = if python.matches('.').count() >= 2 {
        python.to_string()
    } else {
        format!("{python}.0")
    };
    let short: String = full.splitn(3, '.').take(2).collect::<Vec<_>>().join(".");
    MarkerEnvironment::try_from(MarkerEnvironmentBuilder {
        implementation_name: "cpython",
        implementation_version: &full,
        os_name: if sys_platform == "win32" {
            "nt"
        } else {
            "posix"
        },
        platform_machine: machine,
        platform_python_implementation: "CPython",
        platform_release: "",
        platform_system: system,
        platform_version: "",
        python_full_version: &full,
        python_version: &short,
        sys_platform,
    })
    .map_err(|e| anyhow!("python version {python:?}: {e}"))
}

/// Run a parser of pep508_rs, turning a panic inside it into an error. pep508_rs 0.9
/// panics on some malformed input (a name ending in `-`, `_` or `.` right before a space,
/// `;`, `[`, `@` or a non-ASCII character; a non-ASCII character right after a quoted
/// marker value): it slices a string inside a multi-byte character or past a name's end.
/// User files reach these parsers, so no input may end in a panic.
fn guarded<T, E: std::fmt::Display>(
    what: &str,
    text: &str,
    parse: impl FnOnce() -> std::result::Result<T, E>,
) -> Result<T> {
    // The error is rendered inside the guard as well: pep508_rs's Display of an error
    // underlines the input by byte offsets and panics inside a multi-byte character.
    match crate::error::quietly(|| parse().map_err(|e| first_line(&e.to_string()))) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(anyhow!("{e}")),
        None => Err(anyhow!("{what} {text:?} is not valid PEP 508")),
    }
}

/// Parse a marker expression; the empty string is "always true".
pub fn marker(text: &str) -> Result<MarkerTree> {
    if text.trim().is_empty() {
        return Ok(MarkerTree::TRUE);
    }
    guarded("marker", text, || text.parse::<MarkerTree>())
}

/// Parse a PEP 508 requirement.
pub fn requirement(text: &str) -> Result<Requirement> {
    guarded("requirement", text, || Requirement::from_str(text))
}

pub fn specifiers(text: &str) -> Result<VersionSpecifiers> {
    guarded("version specifier", text, || {
        VersionSpecifiers::from_str(text)
    })
}

pub fn version(text: &str) -> Result<Version> {
    guarded("version", text, || Version::from_str(text))
}

pub fn evaluate(marker: &MarkerTree, env: &MarkerEnvironment, extra: Option<&str>) -> bool {
    let extras: Vec<ExtraName> = extra
        .and_then(|e| ExtraName::from_str(e).ok())
        .into_iter()
        .collect();
    marker.evaluate(env, &extras)
}

/// The version a requirement is expected to resolve to, for choosing version-dependent
/// policy rules: its pin (`==`, `===`); the newest release (None from `Some(None)`…) is
/// represented by `Newest` when nothing bounds it from above; otherwise its lower bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolves {
    /// Pinned, or bounded above with a known lower bound.
    To(Version),
    /// No upper bound: the resolver picks the newest release.
    Newest,
    /// Bounded above with no lower bound (or a URL): unknown.
    Unknown,
}

pub fn resolves_to(req: &Requirement) -> Resolves {
    let specs = match &req.version_or_url {
        Some(pep508_rs::VersionOrUrl::VersionSpecifier(specs)) => specs,
        Some(pep508_rs::VersionOrUrl::Url(_)) => return Resolves::Unknown,
        None => return Resolves::Newest,
    };
    let mut lower: Option<Version> = None;
    let mut upper = false;
    for s in specs.iter() {
        match s.operator() {
            Operator::Equal | Operator::ExactEqual => return Resolves::To(s.version().clone()),
            Operator::EqualStar | Operator::TildeEqual => {
                upper = true;
                lower = lower.max(Some(s.version().clone()));
            }
            Operator::GreaterThan | Operator::GreaterThanEqual => {
                lower = lower.max(Some(s.version().clone()));
            }
            Operator::LessThan | Operator::LessThanEqual => upper = true,
            _ => {}
        }
    }
    match (upper, lower) {
        (false, _) => Resolves::Newest,
        (true, Some(v)) => Resolves::To(v),
        (true, None) => Resolves::Unknown,
    }
}

/// Split a requirement string at its marker separator: `("name>=1 ", Some(" marker"))`.
/// URL requirements need whitespace before `;` (PEP 508), so a `;` inside a URL stays.
pub fn split_marker(text: &str) -> (&str, Option<&str>) {
    let is_url = text.contains('@');
    let pos = if is_url {
        text.char_indices()
            .find(|&(i, c)| c == ';' && i > 0 && text[..i].ends_with(char::is_whitespace))
            .map(|(i, _)| i)
    } else {
        text.find(';')
    };
    match pos {
        Some(i) => (&text[..i], Some(&text[i + 1..])),
        None => (text, None),
    }
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_string()
}

/// Requirements on which pep508_rs 0.9.2 panics (for the tests and the fuzzer).
#[doc(hidden)]
pub const PANICKING: &[&str] = &[
    "foo- >=1",
    "foo_;python_version>'3'",
    "foo.[x]",
    "foo-@ https://x.invalid/a.whl",
    "foo-é",
    "foo ; sys_platform == 'linux'é",
    "foo ; sys_platform == 'linux' é",
    // Found by the fuzzer: the error's Display panicked, not the parser.
    "foo ; sys_platform == 'linux'%éé",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        for bad in PANICKING {
            assert!(requirement(bad).is_err(), "{bad}");
        }
        assert!(marker("sys_platform == 'linux'é").is_err());
        assert!(requirement("foo-bar>=1; sys_platform == 'linux'").is_ok());
    }

    #[test]
    fn markers_evaluate_per_platform() {
        let linux = environment("linux", "aarch64", "3.12").unwrap();
        let mac = environment("darwin", "arm64", "3.12").unwrap();
        let m = marker("sys_platform != 'darwin' or platform_machine != 'arm64'").unwrap();
        assert!(evaluate(&m, &linux, None));
        assert!(!evaluate(&m, &mac, None));
        let py = marker("python_version >= '3.11' and python_full_version < '3.13'").unwrap();
        assert!(evaluate(&py, &linux, None));
        assert!(evaluate(&marker("").unwrap(), &mac, None));
        let extra = marker("extra == 'flash'").unwrap();
        assert!(evaluate(&extra, &linux, Some("flash")));
        assert!(!evaluate(&extra, &linux, None));
        assert!(marker("sys_platform = 'linux'").is_err());
    }

    #[test]
    fn what_requirements_resolve_to() {
        let r = |s: &str| resolves_to(&requirement(s).unwrap());
        let v = |s: &str| Resolves::To(version(s).unwrap());
        assert_eq!(r("bitsandbytes==0.47.0"), v("0.47.0"));
        assert_eq!(r("bitsandbytes>=0.45, <1"), v("0.45"));
        assert_eq!(r("bitsandbytes~=0.45.0"), v("0.45.0"));
        assert_eq!(r("bitsandbytes>=0.45"), Resolves::Newest);
        assert_eq!(r("bitsandbytes"), Resolves::Newest);
        assert_eq!(r("bitsandbytes<1"), Resolves::Unknown);
        assert!(requirement("bitsandbytes>=").is_err());
    }

    #[test]
    fn marker_split() {
        assert_eq!(
            split_marker("a>=1 ; sys_platform == 'linux'"),
            ("a>=1 ", Some(" sys_platform == 'linux'"))
        );
        assert_eq!(split_marker("a>=1"), ("a>=1", None));
        assert_eq!(
            split_marker("a @ https://x/y;z.whl ; os_name == 'posix'"),
            ("a @ https://x/y;z.whl ", Some(" os_name == 'posix'"))
        );
    }
}
