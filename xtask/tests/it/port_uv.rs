//! `port` proven with real uv: each fixture is ported, pointed at loopback PyTorch
//! indexes serving tiny wheels with real platform tags, locked, and checked with
//! `uv sync --frozen --dry-run --python-platform` for every target of the policy.
//! The un-ported app-shaped fixtures must fail where the real app fails today. On every
//! lock made here, `cargo xtask audit` must agree with uv: a target fails exactly when
//! audit reports a package `missing` there.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

const CU126: &str = "https://download.pytorch.org/whl/cu126/";
const CU128: &str = "https://download.pytorch.org/whl/cu128";
const CU128_SLASH: &str = "https://download.pytorch.org/whl/cu128/";
const CU130: &str = "https://download.pytorch.org/whl/cu130";

/// The PyTorch indexes as the real ones are shaped: cu126 has torch 2.8.0 for x86_64
/// only; cu128 has x86_64 and aarch64 up to torch 2.11; cu130 has torch 2.12; `pypi`
/// stands in for PyPI (uv reads it before PyPI itself: `UV_INDEX`, first match wins):
/// macOS arm64 builds (macosx_11_0 until 2.11, macosx_14_0 from 2.12) and Linux ones.
fn pytorch_indexes() -> Indexes {
    let ix = Indexes::new();
    for py in ["cp310", "cp312"] {
        let t = |plat: &str| format!("{py}-{py}-{plat}");
        ix.add("cu126", "torch", "2.8.0+cu126", &t("manylinux_2_28_x86_64"));
        for plat in ["manylinux_2_28_x86_64", "manylinux_2_28_aarch64"] {
            ix.add("cu128", "torch", "2.8.0+cu128", &t(plat));
            ix.add("cu128", "torch", "2.7.1+cu128", &t(plat));
            ix.add("cu128", "torchvision", "0.23.0+cu128", &t(plat));
            ix.add("cu130", "torch", "2.12.0+cu130", &t(plat));
            ix.add("cu130", "torchvision", "0.27.0+cu130", &t(plat));
            ix.add("pypi", "torch", "2.8.0", &t(plat));
        }
        for (name, version, mac) in [
            ("torch", "2.12.0", "macosx_14_0_arm64"),
            ("torch", "2.8.0", "macosx_11_0_arm64"),
            ("torch", "2.7.1", "macosx_11_0_arm64"),
            ("torchvision", "0.27.0", "macosx_14_0_arm64"),
            ("torchvision", "0.23.0", "macosx_11_0_arm64"),
        ] {
            ix.add("pypi", name, version, &t(mac));
        }
    }
    ix
}

struct Env {
    uv: PathBuf,
    py310: PathBuf,
    py312: PathBuf,
}

fn env() -> Option<Env> {
    Some(Env {
        uv: find_uv()?,
        py310: python("3.10")?,
        py312: python("3.12")?,
    })
}

const TARGETS: [(&str, &str); 3] = [
    ("linux-x86_64-cuda", "x86_64-manylinux_2_28"),
    ("linux-aarch64-cuda", "aarch64-manylinux_2_28"),
    ("macos-arm64-mps", "aarch64-apple-darwin"),
];

fn uv(e: &Env, dir: &Path, python: &Path) -> Command {
    let mut c = Command::new(&e.uv);
    c.current_dir(dir)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_NO_CONFIG", "1")
        // uv assumes macOS 13.0 for aarch64-apple-darwin; the policy's floor is what a
        // Mac user has.
        .env("MACOSX_DEPLOYMENT_TARGET", policy_macos())
        .env_remove("UV_INDEX")
        .env_remove("UV_INDEX_URL")
        .env_remove("UV_EXTRA_INDEX_URL")
        .env("UV_PYTHON", python)
        .args(["--color", "never"]);
    c
}

/// Point the PyTorch index URLs of a scratch copy at the loopback indexes.
fn point_at_loopback(dir: &Path, ix: &Indexes) {
    let path = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(CU126, &ix.index_url("cu126"))
        .replace(CU128_SLASH, &ix.index_url("cu128"))
        .replace(CU128, &ix.index_url("cu128"))
        .replace(CU130, &ix.index_url("cu130"));
    std::fs::write(path, text).unwrap();
}

fn lock(e: &Env, ix: &Indexes, dir: &Path, python: &Path) {
    let o = run(uv(e, dir, python)
        .env("UV_INDEX", ix.index_url("pypi"))
        .arg("lock"));
    assert!(
        o.status.success(),
        "uv lock failed in {}:\n{}",
        dir.display(),
        text(&o.stderr)
    );
}

/// `uv sync --frozen --dry-run --offline --python-platform` per target: which pass.
fn installable(e: &Env, dir: &Path, python: &Path) -> Vec<(&'static str, bool, String)> {
    TARGETS
        .iter()
        .map(|(target, triple)| {
            let o = run(uv(e, dir, python).args([
                "sync",
                "--frozen",
                "--dry-run",
                "--offline",
                "--python-platform",
                triple,
            ]));
            (*target, o.status.success(), text(&o.stderr))
        })
        .collect()
}

/// audit's verdict per target must match uv's: missing packages ⇔ uv sync fails.
fn audit_agrees(dir: &Path, uv_results: &[(&str, bool, String)]) -> serde_json::Value {
    let ran = Test::in_project(dir, ["audit", "--json"]).run();
    let v = ran.json();
    let mut any_missing = false;
    for (target, uv_ok, uv_err) in uv_results {
        let t = v["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["name"] == *target)
            .unwrap_or_else(|| panic!("audit has no {target}"));
        let missing: Vec<&str> = t["packages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["status"] == "missing")
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        any_missing |= !missing.is_empty();
        any_missing |= t["torch"]["findings"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        assert_eq!(
            missing.is_empty(),
            *uv_ok,
            "{}: audit says missing {missing:?} on {target}, uv sync {}:\n{uv_err}",
            dir.display(),
            if *uv_ok { "succeeded" } else { "failed" }
        );
    }
    assert_eq!(ran.code(), Some(i32::from(any_missing)), "{ran:?}");
    v
}

/// Per-target requirements write torch as a direct URL on the right index, never as a bare
/// pin a plain `pip install -r` would take from the default index.
fn requirements_pin_torch_to_its_index(dir: &Path, ix: &Indexes, linux: &str, mac: &str) {
    Test::in_project(dir, ["requirements"]).expect(0);
    for (target, index, tag) in [
        ("linux-x86_64-cuda", linux, "manylinux_2_28_x86_64"),
        ("linux-aarch64-cuda", linux, "manylinux_2_28_aarch64"),
        ("macos-arm64-mps", "pypi", mac),
    ] {
        let body = std::fs::read_to_string(dir.join("requirements").join(format!("{target}.txt")))
            .unwrap();
        let torch = body
            .lines()
            .find(|l| l.starts_with("torch "))
            .unwrap_or_else(|| panic!("{target}: no torch line:\n{body}"));
        assert!(
            torch.starts_with(&format!("torch @ {}/files/torch-", ix.index_url(index))),
            "{target}: {torch}"
        );
        assert!(torch.contains(tag), "{target}: {torch}");
        assert!(
            !body.contains("\ntorch=="),
            "{target}: a bare torch pin:\n{body}"
        );
    }
}

fn port(dir: &Path) {
    Test::in_project(dir, ["port"]).expect(0);
    // Idempotent: nothing left to change.
    Test::in_project(dir, ["port", "--check"]).expect(0);
}

/// Which index each torch build in the lock comes from, by the OS its wheels are for.
fn torch_sources(dir: &Path) -> Vec<(String, String)> {
    let lock: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.join("uv.lock")).unwrap()).unwrap();
    let mut out = Vec::new();
    for p in lock["package"].as_array().unwrap() {
        if p["name"].as_str() != Some("torch") {
            continue;
        }
        let registry = p["source"]["registry"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        for w in p["wheels"].as_array().into_iter().flatten() {
            let url = w["url"].as_str().unwrap();
            let os = if url.contains("macosx") {
                "macos"
            } else {
                "linux"
            };
            out.push((os.to_string(), registry.clone()));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Port, lock and install `fixture`; its torch must come from `linux` (a loopback index)
/// on Linux and from PyPI on macOS with a `mac` wheel.
fn check_ported(fixture: &str, linux: &str, mac: &str) {
    let Some(e) = env() else { return };
    let ix = pytorch_indexes();
    let dir = copy_fixture(&format!("port/{fixture}"));
    port(dir.path());
    point_at_loopback(dir.path(), &ix);
    lock(&e, &ix, dir.path(), &e.py312);
    let results = installable(&e, dir.path(), &e.py312);
    for (target, ok, err) in &results {
        assert!(
            ok,
            "{fixture}: ported project does not install on {target}:\n{err}"
        );
    }
    audit_agrees(dir.path(), &results);
    requirements_pin_torch_to_its_index(dir.path(), &ix, linux, mac);
    let sources = torch_sources(dir.path());
    assert!(!sources.is_empty(), "no torch in the lock");
    for (os, registry) in &sources {
        let want = if os == "macos" {
            ix.index_url("pypi")
        } else {
            ix.index_url(linux)
        };
        assert_eq!(
            registry.trim_end_matches('/'),
            want,
            "{fixture}: torch for {os}"
        );
    }
    assert!(sources.iter().any(|(os, _)| os == "macos"), "{sources:?}");
    assert!(sources.iter().any(|(os, _)| os == "linux"), "{sources:?}");
}

#[test]
fn main_shape_ports_and_installs_everywhere() {
    // torch==2.8.0: CUDA 12.8 builds; PyPI's macOS 11 wheel.
    check_ported("main", "cu128", "macosx_11_0_arm64");
}

#[test]
fn arm64_attempt_shape_ports_and_installs_everywhere() {
    check_ported("arm64-attempt", "cu128", "macosx_11_0_arm64");
}

#[test]
fn odd_project_ports_and_installs_everywhere() {
    // torch>=2.7: the newest torch, 2.12, which only the CUDA 13.0 index has and whose
    // macOS wheel needs macOS 14.
    check_ported("odd", "cu130", "macosx_14_0_arm64");
}

/// Without `port`, the fixtures fail exactly where the real app fails today: main's
/// shape installs on x86_64 Linux only, the ARM64 attempt's everywhere but macOS.
#[test]
fn unported_fixtures_fail_where_the_app_fails() {
    let Some(e) = env() else { return };
    let ix = pytorch_indexes();
    for (fixture, expected) in [
        ("main", [true, false, false]),
        ("arm64-attempt", [true, true, false]),
    ] {
        let dir = copy_fixture(&format!("port/{fixture}"));
        point_at_loopback(dir.path(), &ix);
        lock(&e, &ix, dir.path(), &e.py310);
        let got = installable(&e, dir.path(), &e.py310);
        for ((target, ok, err), want) in got.iter().zip(expected) {
            assert_eq!(
                *ok,
                want,
                "{fixture} un-ported on {target}: expected {}\n{err}",
                if want { "success" } else { "failure" }
            );
        }
        let report = audit_agrees(dir.path(), &got);
        assert!(
            report["warnings"].as_array().unwrap().is_empty(),
            "{report}"
        );
        if fixture == "main" {
            // The app's cu126 torch has no Blackwell kernels: the x86_64 target's B200,
            // B300 and RTX 5090 fail, and cu128 is named as the fix.
            let torch = &report["targets"][0]["torch"];
            assert_eq!(torch["build"], "cuda 12.6", "{torch}");
            assert_eq!(
                torch["gpus"]["fails"],
                serde_json::json!(["B200", "B300", "RTX 5090"])
            );
            assert!(
                torch["findings"][0]
                    .as_str()
                    .unwrap()
                    .ends_with("pytorch-cu128 (CUDA 12.8) runs it"),
                "{torch}"
            );
        }

        // Porting without re-locking leaves a stale lock: audit says so.
        point_back(dir.path(), &ix);
        port(dir.path());
        Test::in_project(dir.path(), ["audit"])
            .run()
            .err_has("warning: uv.lock is stale: requires-python")
            .err_has("run `cargo xtask lock`");
    }
}

/// Undo `point_at_loopback` so `port` sees the real URLs again.
fn point_back(dir: &Path, ix: &Indexes) {
    let path = dir.join("pyproject.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text
        .replace(&ix.index_url("cu126"), CU126)
        .replace(&ix.index_url("cu128"), CU128_SLASH)
        .replace(&ix.index_url("cu130"), CU130);
    std::fs::write(path, text).unwrap();
}

/// Wheels against the platform floors: bitsandbytes 0.49.1 (real PyPI) ships macOS 14
/// wheels only, which install at the policy's floor (14.0, uv told so) — uv's own default
/// of 13.0 would refuse them. A loopback package whose wheels need glibc 2.34 on aarch64
/// and macOS 15 is then refused by both uv and audit there; sdist-only gputil is `build`.
#[test]
fn audit_agrees_with_uv_on_platform_floors() {
    let Some(e) = env() else { return };
    let ix = pytorch_indexes();
    for tag in [
        "py3-none-manylinux_2_17_x86_64",
        "py3-none-manylinux_2_34_aarch64",
        "py3-none-macosx_15_0_arm64",
    ] {
        ix.add("pypi", "newer-os", "1.0", tag);
    }
    let dir = copy_fixture("audit/floors");
    point_at_loopback(dir.path(), &ix);
    lock(&e, &ix, dir.path(), &e.py312);
    let got = installable(&e, dir.path(), &e.py312);
    assert_eq!(
        got.iter().map(|r| r.1).collect::<Vec<_>>(),
        [true, true, true],
        "{got:?}"
    );
    let report = audit_agrees(dir.path(), &got);
    let pkgs =
        |r: &serde_json::Value, t: usize| r["targets"][t]["packages"].as_array().unwrap().clone();
    let find = |r: &serde_json::Value, t: usize, name: &str| {
        pkgs(r, t).into_iter().find(|p| p["name"] == name).unwrap()
    };
    assert!(
        find(&report, 2, "bitsandbytes")["wheel"]
            .as_str()
            .unwrap()
            .ends_with("macosx_14_0_arm64.whl")
    );
    assert!(
        find(&report, 1, "bitsandbytes")["wheel"]
            .as_str()
            .unwrap()
            .ends_with("manylinux_2_24_aarch64.whl")
    );
    assert_eq!(find(&report, 1, "gputil")["status"], "build");
    assert_eq!(find(&report, 1, "torch")["status"], "wheel");
    // The floors the chosen wheels need, beside the policy's: torch's manylinux_2_28 on
    // Linux, bitsandbytes' macOS 14 wheel on the Mac.
    let floor = |t: usize| report["targets"][t]["floor"].clone();
    assert_eq!(floor(1)["of"], "glibc");
    assert_eq!(floor(1)["needed"], "2.28");
    assert_eq!(floor(1)["policy"], "2.28");
    assert_eq!(floor(1)["by"], "torch 2.8.0", "{report}");
    assert_eq!(floor(2)["of"], "macOS");
    assert_eq!(floor(2)["needed"], "14.0");
    assert_eq!(floor(2)["by"], "bitsandbytes 0.49.1", "{report}");
    Test::in_project(dir.path(), ["audit"])
        .run()
        .out_has("wheels need macOS ≥ 14.0 (bitsandbytes 0.49.1); the policy's floor: macOS 14.0");

    let path = dir.path().join("pyproject.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "\"gputil==1.4.0\",",
            "\"gputil==1.4.0\",\n    \"newer-os==1.0\",",
        ),
    )
    .unwrap();
    lock(&e, &ix, dir.path(), &e.py312);
    let got = installable(&e, dir.path(), &e.py312);
    assert_eq!(
        got.iter().map(|r| r.1).collect::<Vec<_>>(),
        [true, false, false],
        "{got:?}"
    );
    let report = audit_agrees(dir.path(), &got);
    assert_eq!(find(&report, 0, "newer-os")["status"], "wheel");
    assert_eq!(find(&report, 1, "newer-os")["status"], "missing");
    assert_eq!(find(&report, 2, "newer-os")["status"], "missing");
}

/// PyPI's torch 2.8.0, locked for the three targets with real uv against real PyPI: a
/// CUDA 12.8 build on x86_64 (it pulls in the CUDA runtime there), a CPU-only build on
/// aarch64 (it pulls in nothing there), the MPS build on macOS. `uv sync` would install
/// all three; audit fails the aarch64 one, whose GPU would never be used. After `port`
/// and a lock against a loopback index standing in for pytorch-cu128, both Linux targets
/// get CUDA 12.8 builds with kernels for every GPU they promise.
#[test]
fn a_cpu_only_torch_on_a_gpu_target_fails_until_ported() {
    let Some(e) = env() else { return };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pyproject.toml"),
        r#"[project]
name = "gpu-or-not"
version = "0.1.0"
requires-python = "==3.12.*"
dependencies = ["torch==2.8.0"]

[tool.uv]
package = false
environments = ["sys_platform == 'linux'", "sys_platform == 'darwin'"]
required-environments = [
    "sys_platform == 'linux' and platform_machine == 'x86_64'",
    "sys_platform == 'linux' and platform_machine == 'aarch64'",
    "sys_platform == 'darwin' and platform_machine == 'arm64'",
]
"#,
    )
    .unwrap();
    let lock_here = |what: &str| {
        let o = run(uv(&e, dir.path(), &e.py312).arg("lock"));
        assert!(o.status.success(), "uv lock ({what}): {}", text(&o.stderr));
    };
    lock_here("PyPI");
    let got = installable(&e, dir.path(), &e.py312);
    assert!(got.iter().all(|r| r.1), "uv installs all three: {got:?}");
    let ran = Test::in_project(dir.path(), ["audit", "--json", "--no-imports"]).expect(1);
    let v = ran.json();
    let torch = |v: &serde_json::Value, t: usize| v["targets"][t]["torch"].clone();
    assert_eq!(torch(&v, 0)["build"], "cuda 12.8", "{}", torch(&v, 0));
    assert_eq!(torch(&v, 0)["version"], "2.8.0");
    assert!(torch(&v, 0)["findings"].as_array().unwrap().is_empty());
    assert_eq!(torch(&v, 1)["build"], "cpu", "{}", torch(&v, 1));
    assert_eq!(torch(&v, 1)["sm"], serde_json::Value::Null);
    assert!(
        torch(&v, 1)["findings"][0]
            .as_str()
            .unwrap()
            .contains("CPU-only: the NVIDIA GPU is not used"),
        "{}",
        torch(&v, 1)
    );
    assert_eq!(torch(&v, 2)["build"], "mps");
    let last = ran.stderr().lines().last().unwrap_or_default().to_string();
    assert_eq!(
        last,
        "error: torch cannot use the GPU on linux-aarch64-cuda (cpu build) (listed above)"
    );
    Test::in_project(dir.path(), ["audit", "--no-imports"])
        .expect(1)
        .out_has("linux-aarch64-cuda (Python 3.12): installs:")
        .out_has("  torch 2.8.0: CPU-only (no CUDA runtime package is installed with it here): not GH200 (sm_90), GB200 (sm_100), GB300 (sm_103), GB10 (sm_121)")
        .out_has("run `cargo xtask port` (it sources torch from the CUDA index), then `cargo xtask lock`");

    port(dir.path());
    // port says what each target will run before the lock does.
    Test::in_project(dir.path(), ["port", "--check"])
        .expect(0)
        .err_has("  linux-aarch64-cuda: torch 2.8.0: CUDA 12.8, kernels for sm_90 sm_100 sm_120: GH200, GB200, GB300, GB10\n")
        .err_has("  macos-arm64-mps: torch 2.8.0: MPS (Metal) for Apple Silicon\n");
    let ix = pytorch_indexes();
    point_at_loopback(dir.path(), &ix);
    lock_here("ported, cu128 on loopback");
    let ran = Test::in_project(dir.path(), ["audit", "--json", "--no-imports"]).expect(0);
    let v = ran.json();
    for t in [0, 1] {
        assert_eq!(torch(&v, t)["version"], "2.8.0+cu128");
        assert_eq!(torch(&v, t)["build"], "cuda 12.8");
        assert_eq!(torch(&v, t)["gpus"]["fails"], serde_json::json!([]));
    }
    assert_eq!(
        torch(&v, 1)["sm"],
        serde_json::json!(["sm_90", "sm_100", "sm_120"])
    );
    assert_eq!(
        torch(&v, 1)["gpus"]["runs"],
        serde_json::json!(["GH200", "GB200", "GB300", "GB10"])
    );
    assert_eq!(torch(&v, 2)["build"], "mps");
    // Asked about a Jetson Thor: no sm_110 in the 2.8 builds, and none in any 2.8 build.
    Test::in_project(dir.path(), ["audit", "--no-imports", "--gpu", "jetson thor"])
        .expect(1)
        .out_has("GB10 — not Thor (sm_110)")
        .out_has("Thor (11.0) (asked about): no kernels for sm_110: torch 2.8.0+cu128 carries sm_90 sm_100 sm_120; torch >=2.9 from pytorch-cu130 (CUDA 13.0) runs it");
}
