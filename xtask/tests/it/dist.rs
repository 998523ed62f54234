//! `dist --target`: what it refuses and what it asks for before it builds anything. The
//! full cross build (aarch64 bundle linked for glibc 2.28, run on an arm64 root) is
//! `.ci/aarch64`: minutes of release builds, run once per CI run rather than per test.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{run, text, xtask};

fn dist(target: &str, path: Option<&str>) -> (Option<i32>, String) {
    let out = tempfile::tempdir().unwrap();
    let mut c = xtask();
    c.args(["dist", "--target", target, "--out"])
        .arg(out.path());
    if let Some(p) = path {
        c.env("PATH", p);
    }
    for (k, _) in std::env::vars() {
        if k.starts_with("CARGO_TARGET_") && k.ends_with("_LINKER") {
            c.env_remove(k);
        }
    }
    let o = run(&mut c);
    assert!(
        std::fs::read_dir(out.path()).unwrap().next().is_none(),
        "a refused dist wrote nothing"
    );
    (o.status.code(), text(&o.stderr))
}

fn has_std(triple: &str) -> bool {
    let o = Command::new("rustc")
        .args(["--print", "target-libdir", "--target", triple])
        .output();
    o.is_ok_and(|o| {
        let dir = String::from_utf8_lossy(&o.stdout).trim().to_string();
        o.status.success()
            && std::fs::read_dir(dir).is_ok_and(|mut d| {
                d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().starts_with("libstd-")))
            })
    })
}

#[test]
fn a_triple_without_a_bundle_is_a_usage_error() {
    for bad in ["wasm32-unknown-unknown", "riscv64gc-unknown-linux-gnu"] {
        let (code, err) = dist(bad, None);
        assert_eq!(code, Some(2), "{bad}: {err}");
        let last = err.lines().last().unwrap_or_default();
        assert!(
            last.starts_with(&format!("error: --target {bad}:")),
            "{err}"
        );
    }
}

#[test]
fn a_missing_standard_library_says_how_to_add_it() {
    let candidates = [
        "aarch64-unknown-linux-musl",
        "x86_64-unknown-linux-musl",
        "x86_64-apple-darwin",
        "aarch64-pc-windows-msvc",
    ];
    let Some(triple) = candidates.iter().find(|t| !has_std(t)) else {
        eprintln!("SKIPPED: every candidate target's standard library is installed here");
        return;
    };
    let (code, err) = dist(triple, None);
    assert_eq!(code, Some(3), "{err}");
    let last = err.lines().last().unwrap();
    assert!(
        last.contains(&format!("no standard library for {triple}")),
        "{err}"
    );
    let how = if crate::support::which("rustup").is_some() {
        format!("`rustup target add {triple}`")
    } else {
        "standard library".into()
    };
    assert!(last.contains(&how), "{err}");
}

#[test]
fn no_linker_for_aarch64_names_what_to_install() {
    let triple = "aarch64-unknown-linux-gnu";
    if std::env::consts::ARCH == "aarch64" || !has_std(triple) {
        eprintln!("SKIPPED: needs an x86_64 host with the {triple} standard library");
        return;
    }
    // Only the Rust toolchain on PATH: no zig, no cargo-zigbuild, no cross gcc.
    let rustc = crate::support::which("rustc").unwrap();
    let bin: PathBuf = rustc.parent().unwrap().into();
    if ["cargo-zigbuild", "aarch64-linux-gnu-gcc"]
        .iter()
        .any(|t| bin.join(t).exists())
    {
        eprintln!("SKIPPED: {} has a linker for {triple}", bin.display());
        return;
    }
    let (code, err) = dist(triple, Some(bin.to_str().unwrap()));
    assert_eq!(code, Some(3), "{err}");
    let last = err.lines().last().unwrap();
    for needle in [
        "no linker for aarch64-unknown-linux-gnu",
        "cargo install --locked cargo-zigbuild",
        "pip install ziglang",
        "apt-get install gcc-aarch64-linux-gnu",
        "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER",
    ] {
        assert!(last.contains(needle), "{needle}: {err}");
    }
}
