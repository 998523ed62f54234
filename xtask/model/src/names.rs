//! The names every room shares, typed once: operating systems and CPU architectures
//! (as Rust, Python markers, wheel tags and Docker spell them), PEP 503 package names,
//! and where in a TOML file an error is.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An operating system, as Rust names it (`linux`, `macos`, `windows`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Os {
    Linux,
    Macos,
    Windows,
    /// Any other, by Rust's name (`freebsd`): no target maps to it.
    Other(&'static str),
}

impl Os {
    /// The OS this binary runs on.
    pub fn host() -> Os {
        match std::env::consts::OS {
            "linux" => Os::Linux,
            "macos" => Os::Macos,
            "windows" => Os::Windows,
            other => Os::Other(other),
        }
    }

    /// From Python's `sys.platform` (`linux`, `darwin`, `win32`).
    pub fn from_sys_platform(s: &str) -> Option<Os> {
        match s {
            "linux" => Some(Os::Linux),
            "darwin" => Some(Os::Macos),
            "win32" => Some(Os::Windows),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Os::Linux => "linux",
            Os::Macos => "macos",
            Os::Windows => "windows",
            Os::Other(name) => name,
        }
    }

    /// Python's `sys.platform`.
    pub fn sys_platform(self) -> &'static str {
        match self {
            Os::Macos => "darwin",
            Os::Windows => "win32",
            other => other.as_str(),
        }
    }

    /// Python's `platform.system()`.
    pub fn platform_system(self) -> &'static str {
        match self {
            Os::Linux => "Linux",
            Os::Macos => "Darwin",
            Os::Windows => "Windows",
            Os::Other(name) => name,
        }
    }
}

impl fmt::Display for Os {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Os {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A CPU architecture under its one name here (`x86_64`, `aarch64`), whatever `uname
/// -m`, macOS, Docker or a wheel tag call it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Arch {
    X86_64,
    Aarch64,
    /// Any other, as reported (`riscv64`): no target maps to it.
    Other(String),
}

impl Arch {
    /// The architecture this binary runs on.
    pub fn host() -> Arch {
        Arch::parse(std::env::consts::ARCH)
    }

    /// From `uname -m`, Rust, Python's `platform_machine`, Docker or a wheel tag.
    pub fn parse(raw: &str) -> Arch {
        match raw.trim() {
            "x86_64" | "amd64" | "x64" => Arch::X86_64,
            "aarch64" | "arm64" | "armv8" | "arm64e" => Arch::Aarch64,
            other => Arch::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
            Arch::Other(name) => name,
        }
    }
}

impl fmt::Display for Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Arch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Any spelling [`Arch::parse`] knows, so a report written elsewhere reads back.
impl<'de> Deserialize<'de> for Arch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Arch, D::Error> {
        Ok(Arch::parse(&String::deserialize(d)?))
    }
}

/// PEP 503 name normalisation: lower case, runs of `-`, `_` and `.` become one `-`.
///
/// The rule pep508_rs's `PackageName` applies, without refusing what it refuses (a
/// leading `-`, a space): this compares names as files write them (lock entries, table
/// keys, wheel stems). A parsed requirement's `name` is a `PackageName`, normalised
/// already.
pub fn normalize(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut last_sep = false;
    for c in name.chars() {
        if c == '-' || c == '_' || c == '.' {
            if !last_sep {
                out.push('-');
            }
            last_sep = true;
        } else {
            out.push(c.to_ascii_lowercase());
            last_sep = false;
        }
    }
    out
}

/// Whether two spellings name one package (or one extra or group: the same rule).
pub fn same(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

/// A TOML error as one line: `file:line:col: message` (`line:col: message` when `file`
/// is empty; without the position when the parser gave none).
pub fn toml_error(
    file: &str,
    text: &str,
    span: Option<std::ops::Range<usize>>,
    message: &str,
) -> String {
    let msg = message.trim();
    let at = span.map(|s| line_col(text, s.start));
    match (file, at) {
        ("", Some((line, col))) => format!("{line}:{col}: {msg}"),
        ("", None) => msg.to_string(),
        (file, Some((line, col))) => format!("{file}:{line}:{col}: {msg}"),
        (file, None) => format!("{file}: {msg}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise() {
        assert_eq!(normalize("Flash_Attn"), "flash-attn");
        assert_eq!(normalize("a.-_b"), "a-b");
        assert!(same("Flash_Attn", "flash.attn") && !same("flash-attn", "flashattn"));
        // The rule a parsed requirement's name follows.
        for n in [
            "Flash_Attn",
            "a.-_b",
            "NVIDIA-cuDNN-cu12",
            "zope.interface",
            "x",
        ] {
            let parsed: pep508_rs::PackageName = n.parse().unwrap();
            assert_eq!(normalize(n), parsed.as_ref(), "{n}");
        }
    }

    #[test]
    fn architectures_have_one_name() {
        assert_eq!(Arch::parse("aarch64\n"), Arch::Aarch64);
        assert_eq!(Arch::parse("arm64"), Arch::Aarch64);
        assert_eq!(Arch::parse("amd64"), Arch::X86_64);
        assert_eq!(Arch::parse("riscv64").as_str(), "riscv64");
        assert_eq!(Os::from_sys_platform("darwin"), Some(Os::Macos));
        assert_eq!(Os::Macos.platform_system(), "Darwin");
    }

    #[test]
    fn toml_errors_say_where() {
        assert_eq!(
            toml_error("", "a = 1\nb = ?", Some(10..11), "bad\n"),
            "2:5: bad"
        );
        assert_eq!(toml_error("f.toml", "", None, "bad"), "f.toml: bad");
        assert_eq!(line_col("é\nx", 4), (2, 2));
    }
}
