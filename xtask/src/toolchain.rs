//! Building this workspace for a Rust target triple: what the triple means (OS,
//! architecture, libc), whether the toolchain has its standard library, and which linker
//! builds it: `cargo zigbuild` (links against any glibc floor), a linker named in
//! `CARGO_TARGET_<TRIPLE>_LINKER`, the usual cross gcc, or the host's own for the host.
//! `dist` uses it; when something is missing the error says what to install (exit 3).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use camino::Utf8Path;

use crate::elf::Glibc;
use crate::error;
use crate::names::{Arch, Os};
use crate::process::{Cmd, find};

/// A Rust target triple (`aarch64-unknown-linux-gnu`), understood.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Triple {
    pub triple: String,
    pub os: Os,
    pub arch: Arch,
    /// glibc (`-gnu`): a floor can be chosen when linking.
    pub gnu: bool,
}

impl Triple {
    pub fn parse(s: &str) -> Result<Triple> {
        let arch = Arch::parse(s.split('-').next().unwrap_or_default());
        let os = if s.contains("-linux-") {
            Os::Linux
        } else if s.ends_with("-apple-darwin") {
            Os::Macos
        } else if s.contains("-windows-") {
            Os::Windows
        } else {
            return Err(error::usage(format!(
                "--target {s}: not a Linux, macOS or Windows target triple \
                 (e.g. aarch64-unknown-linux-gnu, x86_64-unknown-linux-gnu, aarch64-apple-darwin)"
            )));
        };
        if matches!(arch, Arch::Other(_)) {
            return Err(error::usage(format!(
                "--target {s}: only x86_64 and aarch64 targets have a bundle"
            )));
        }
        Ok(Triple {
            triple: s.to_string(),
            os,
            arch,
            gnu: s.ends_with("-linux-gnu"),
        })
    }

    /// The triple this binary was built for: the host's, for `cargo xtask`.
    pub fn this() -> Triple {
        Triple::parse(env!("XTASK_BUILD_TARGET")).expect("built for a known triple")
    }

    /// `CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER`.
    pub fn linker_var(&self) -> String {
        format!(
            "CARGO_TARGET_{}_LINKER",
            self.triple.to_uppercase().replace(['-', '.'], "_")
        )
    }

    /// The GNU cross-compiler prefix Debian and Ubuntu use (`aarch64-linux-gnu`).
    fn gcc_prefix(&self) -> String {
        format!("{}-linux-gnu", self.arch)
    }
}

/// How the build links.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Linker {
    /// `cargo zigbuild --target TRIPLE.X.Y`: zig links against that glibc.
    Zig { glibc: Option<Glibc> },
    /// `cargo build` with the linker the environment or cargo's config names.
    Configured(String),
    /// `cargo build` with a cross gcc found on PATH, set through the target's LINKER variable.
    CrossGcc(PathBuf),
    /// `cargo build` for the host, with its own linker (its own glibc is the floor).
    Host,
}

impl Linker {
    pub fn describe(&self, t: &Triple) -> String {
        match self {
            Linker::Zig { glibc: Some(g) } => format!("cargo zigbuild, linked for glibc {g}"),
            Linker::Zig { glibc: None } => "cargo zigbuild".into(),
            Linker::Configured(l) => format!("{} = {l}", t.linker_var()),
            Linker::CrossGcc(p) => format!("{} (found on PATH)", p.display()),
            Linker::Host => "the host's linker (its glibc is the floor)".into(),
        }
    }
}

const QUICK: Duration = Duration::from_secs(30);

/// Whether `rustc` (run in `dir`, so rustup picks the workspace's toolchain) has the
/// standard library for `t`; the error says how to add it.
pub fn check_std(rustc: &Utf8Path, dir: &Utf8Path, t: &Triple) -> Result<()> {
    let probe = Cmd::new(rustc.as_str())
        .args(["--print", "target-libdir", "--target", &t.triple])
        .dir(dir.as_std_path())
        .probe(QUICK);
    let has_std = probe.ok_stdout().is_some_and(|d| {
        std::fs::read_dir(d.trim()).is_ok_and(|mut it| {
            it.any(|e| {
                e.is_ok_and(|e| {
                    let n = e.file_name();
                    let n = n.to_string_lossy();
                    n.starts_with("libstd-") && n.ends_with(".rlib")
                })
            })
        })
    });
    if has_std {
        return Ok(());
    }
    let how = if find("rustup").is_some() {
        format!("`rustup target add {}`", t.triple)
    } else if t.os == Os::Linux {
        let deb = match t.arch {
            Arch::Aarch64 => "arm64",
            _ => "amd64",
        };
        format!(
            "the toolchain's standard library for it (Debian and Ubuntu: `apt-get install libstd-rust-dev:{deb}` after `dpkg --add-architecture {deb}`)"
        )
    } else {
        "a toolchain with its standard library (rustup: `rustup target add`)".into()
    };
    Err(error::absent(format!(
        "{rustc} has no standard library for {}: install {how}",
        t.triple
    )))
}

/// Choose how to link for `t` from this host: an explicit linker wins, then `cargo
/// zigbuild` (with `floor` for glibc targets), then a cross gcc, then the host's own.
pub fn choose_linker(t: &Triple, host: &Triple, floor: Option<Glibc>) -> Result<Linker> {
    if let Ok(l) = std::env::var(t.linker_var())
        && !l.is_empty()
    {
        return Ok(Linker::Configured(l));
    }
    if zigbuild_ready() {
        return Ok(Linker::Zig {
            glibc: floor.filter(|_| t.gnu),
        });
    }
    if t == host {
        return Ok(Linker::Host);
    }
    if t.gnu
        && let Some(gcc) = find(&format!("{}-gcc", t.gcc_prefix()))
    {
        return Ok(Linker::CrossGcc(gcc));
    }
    let zig = "cargo-zigbuild and zig (`cargo install --locked cargo-zigbuild` and \
               `pip install ziglang`, or zig on PATH), which also links for an old glibc";
    let how = match (t.os, host.os) {
        (Os::Macos, Os::Macos) => {
            format!("Xcode's command line tools (`xcode-select --install`), or {zig}")
        }
        (Os::Macos, _) => {
            format!("{zig} with an Apple SDK (SDKROOT); without one, build this bundle on a Mac")
        }
        _ => format!(
            "{zig}; or a cross gcc (Debian and Ubuntu: `apt-get install gcc-{}`); or name \
             one in {}",
            t.gcc_prefix(),
            t.linker_var()
        ),
    };
    Err(error::absent(format!(
        "no linker for {} on this {} host: install {how}",
        t.triple, host.triple
    )))
}

/// `cargo zigbuild` is installed and finds zig (on PATH, or the `ziglang` Python package).
fn zigbuild_ready() -> bool {
    if find("cargo-zigbuild").is_none() {
        return false;
    }
    if find("zig").is_some() {
        return true;
    }
    ["python3", "python"].iter().any(|py| {
        find(py).is_some()
            && Cmd::new(py)
                .args(["-c", "import ziglang"])
                .probe(QUICK)
                .ok_stdout()
                .is_some()
    })
}

/// Where cargo puts what `build_cmd` built: `<target-dir>/<triple>/<profile>`, or
/// `<target-dir>/<profile>` for the host's own build.
pub fn out_dir(
    target_dir: &Utf8Path,
    t: &Triple,
    linker: &Linker,
    profile: &str,
) -> camino::Utf8PathBuf {
    if *linker == Linker::Host {
        target_dir.join(profile)
    } else {
        target_dir.join(&t.triple).join(profile)
    }
}

/// The cargo command line that builds `pkg` for `t` with `linker`.
pub fn build_cmd(cargo: &Utf8Path, t: &Triple, linker: &Linker, pkg: &str) -> Cmd {
    let target = match linker {
        Linker::Zig { glibc: Some(g) } => format!("{}.{g}", t.triple),
        _ => t.triple.clone(),
    };
    let sub = if matches!(linker, Linker::Zig { .. }) {
        "zigbuild"
    } else {
        "build"
    };
    let mut c = Cmd::new(cargo.as_str()).args([sub, "-p", pkg]);
    // The host's own build shares target/<profile> with every other build of the workspace.
    if *linker != Linker::Host {
        c = c.args(["--target", &target]);
    }
    if let Linker::CrossGcc(gcc) = linker {
        c = c.env(t.linker_var(), gcc.as_os_str());
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triples_are_understood_or_refused() {
        let t = Triple::parse("aarch64-unknown-linux-gnu").unwrap();
        assert_eq!(
            (t.os, t.arch.clone(), t.gnu),
            (Os::Linux, Arch::Aarch64, true)
        );
        assert_eq!(
            t.linker_var(),
            "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER"
        );
        let m = Triple::parse("aarch64-apple-darwin").unwrap();
        assert_eq!((m.os, m.gnu), (Os::Macos, false));
        let musl = Triple::parse("x86_64-unknown-linux-musl").unwrap();
        assert!(!musl.gnu);
        for bad in ["wasm32-unknown-unknown", "riscv64gc-unknown-linux-gnu", ""] {
            let e = Triple::parse(bad).unwrap_err();
            assert_eq!(error::code_of(&e).as_i32(), 2, "{bad}: {e}");
        }
    }

    #[test]
    fn zigbuild_targets_carry_the_glibc_floor() {
        let t = Triple::parse("aarch64-unknown-linux-gnu").unwrap();
        let zig = Linker::Zig {
            glibc: Some(Glibc::new(2, 28)),
        };
        let cmd = build_cmd(Utf8Path::new("cargo"), &t, &zig, "xtask").display();
        assert!(
            cmd.contains("zigbuild -p xtask --target aarch64-unknown-linux-gnu.2.28"),
            "{cmd}"
        );
        let gcc = Linker::CrossGcc("/usr/bin/aarch64-linux-gnu-gcc".into());
        let cmd = build_cmd(Utf8Path::new("cargo"), &t, &gcc, "xtask").display();
        assert!(
            cmd.contains("build -p xtask --target aarch64-unknown-linux-gnu"),
            "{cmd}"
        );
    }
}
