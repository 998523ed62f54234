//! Engines a user may lack (uv, a Python version): a visible skip where absent, a
//! failure where CI names them in `XTASK_REQUIRE`.

use std::path::PathBuf;

use super::xtask;

/// Whether CI said this engine must be present (`XTASK_REQUIRE=uv,docker,...`).
pub fn required(what: &str) -> bool {
    std::env::var("XTASK_REQUIRE")
        .map(|v| v.split(',').any(|x| x.trim() == what || x.trim() == "all"))
        .unwrap_or(false)
}

/// Skip (printing why) or, when required, fail.
pub fn skip_or_fail(what: &str, why: &str) {
    if required(what) {
        panic!("{what} is required here (XTASK_REQUIRE) but {why}");
    }
    eprintln!("SKIPPED: {why} (set XTASK_REQUIRE={what} to make this a failure)");
}

pub fn find_uv() -> Option<PathBuf> {
    let found = which("uv");
    if found.is_none() {
        skip_or_fail("uv", "uv is not on PATH (python3 -m pip install uv)");
    }
    found
}

pub fn which(program: &str) -> Option<PathBuf> {
    which::which(program).ok()
}

/// An interpreter of Python `X.Y`, found the way `cargo xtask platform` finds them.
pub fn python(version: &str) -> Option<PathBuf> {
    let out = xtask().args(["platform", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let prefix = format!("{version}.");
    let found = v["tools"]["pythons"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["version"].as_str().unwrap().starts_with(&prefix))
        .map(|p| PathBuf::from(p["path"].as_str().unwrap()));
    if found.is_none() {
        skip_or_fail(
            "uv",
            &format!("no Python {version} interpreter on this machine"),
        );
    }
    found
}
