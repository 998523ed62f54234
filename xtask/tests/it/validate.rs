//! `cargo xtask validate`: levels 1-2 with no project (the README's main job), the
//! `--require` contract, `--merge`, a `dist` bundle run without cargo, and level 3 with
//! real torch from PyPI on CPU.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

/// `xtask validate ARGS...` with no Python downloads. Its report is this machine's, so
/// its output is a stream (a refusal is snapshotted by name).
fn validate(args: &[&str]) -> Test {
    Test::new(["validate"])
        .args(args)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .stream(HOST)
}

fn checks<'a>(v: &'a serde_json::Value, group: &str) -> Vec<&'a serde_json::Value> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["group"] == group)
        .collect()
}

#[test]
fn levels_1_and_2_need_no_project() {
    let v = validate(&["--quick", "--json"]).expect(0).json();
    assert_eq!(v["levels_run"], serde_json::json!([1, 2]));
    for key in ["hostname", "os", "arch", "target", "backend", "gpus"] {
        assert!(v["host"].get(key).is_some(), "{key}");
    }
    assert!(v["versions"]["xtask"].is_string());
    let platform = checks(&v, "platform");
    assert!(
        platform
            .iter()
            .any(|c| c["name"] == "target" && c["status"] == "pass")
    );
    let cpu = checks(&v, "cpu");
    assert_eq!(cpu.len(), 3, "{cpu:?}");
    assert!(cpu.iter().all(|c| c["status"] == "pass" && c["level"] == 2));
    assert!(cpu.iter().all(|c| c["device_kind"] == "cpu"), "{cpu:?}");
    // Every skip says why.
    for c in v["checks"].as_array().unwrap() {
        if c["status"] == "skip" {
            assert!(!c["reason"].as_str().unwrap_or("").is_empty(), "{c}");
        }
    }
    let wgpu = checks(&v, "wgpu");
    if wgpu[0]["status"] == "skip" {
        assert!(
            !required("vulkan"),
            "Vulkan required here: {}",
            wgpu[0]["reason"]
        );
    } else {
        assert!(
            wgpu.len() >= 5 && wgpu.iter().all(|c| c["status"] == "pass"),
            "{wgpu:?}"
        );
    }
    if v["host"]["backend"] != "cuda" {
        let cuda = checks(&v, "cuda");
        assert_eq!(cuda[0]["status"], "skip");
        // No driver and no GPU: tensor-smoke was built without CUDA, and the skip says so.
        let evidence = platform
            .iter()
            .find(|c| c["name"] == "gpu backend")
            .and_then(|c| c["reason"].as_str())
            .unwrap_or_default();
        if evidence.contains("no NVIDIA GPU listed by nvidia-smi") {
            assert_eq!(cuda.len(), 1, "{cuda:?}");
            let why = cuda[0]["reason"].as_str().unwrap();
            assert!(why.contains("built without CUDA"), "{why}");
        }
    }
}

#[test]
fn require_and_bad_input() {
    // A CPU host cannot satisfy --require cuda: exit 3 with one line.
    let ran = validate(&["--level", "1", "--require", "cuda"]).run();
    if ran.code() == Some(3) {
        let err = ran.stderr();
        assert!(
            err.lines()
                .last()
                .unwrap()
                .contains("--require cuda: no cuda check ran"),
            "{err}"
        );
    }
    validate(&["--require", "tpu"])
        .expect(2)
        .one_line_error("tpu");
    validate(&["--level", "5"]).expect(2);
    validate(&["--output", "/nonexistent-dir/r.json"])
        .expect(2)
        .err_has("--output /nonexistent-dir/r.json");
    let v = validate(&["--smoke-bin", "/nonexistent/tensor-smoke", "--json"])
        .run()
        .json();
    assert!(
        checks(&v, "cpu")[0]["reason"]
            .as_str()
            .unwrap()
            .contains("--smoke-bin")
    );
}

#[test]
fn level_3_without_a_project_says_which_levels_ran() {
    let v = validate(&["--level", "3", "--quick", "--json"])
        .expect(0)
        .err_has("ran levels 1, 2")
        .json();
    assert_eq!(v["levels_run"], serde_json::json!([1, 2]));
    assert_eq!(checks(&v, "torch")[0]["status"], "skip");
}

#[test]
fn reports_merge_into_one_table() {
    let dir = tempfile::tempdir().unwrap();
    // `{node}` in --output is the scheduler's node name.
    let a = dir.path().join("gpu-a17.json");
    validate(&["--level", "1", "--output"])
        .arg(dir.path().join("{node}.json"))
        .env("SLURMD_NODENAME", "gpu-a17")
        .env("SLURM_JOB_ID", "4242")
        .expect(0);
    let base: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    assert_eq!(base["host"]["node"], "gpu-a17");
    assert_eq!(base["host"]["job"], "4242");
    // Three GH200 nodes as Slurm names them; node2's GPU is a third as fast.
    let mut files = Vec::new();
    for (node, gemm) in [
        ("node1", 51_000.0),
        ("node2", 17_000.0),
        ("node3", 50_000.0),
    ] {
        let mut r = base.clone();
        r["host"]["node"] = node.into();
        r["host"]["hostname"] = "same-image-hostname".into();
        r["checks"].as_array_mut().unwrap().push(serde_json::json!({
            "level": 2, "group": "cuda", "name": "cuBLAS SGEMM", "status": "pass",
            "device": "#0 NVIDIA GH200 480GB", "device_kind": "cuda", "rate": gemm,
            "unit": "GFLOP/s"
        }));
        let f = dir.path().join(format!("{node}.json"));
        std::fs::write(&f, r.to_string()).unwrap();
        files.push(f);
    }
    let ran = validate(&["--merge"]).args(&files).expect(1);
    ran.out_has("node2: cuda cuBLAS SGEMM [#0 NVIDIA GH200 480GB] 17000.0 GFLOP/s = 0.34 of the median 50000.0")
        .err_has("0 of 3 node(s) failed or wrote no report; 1 slow GPU check(s) on node2");
    let out = ran.stdout();
    for node in ["node1", "node2", "node3"] {
        assert!(out.lines().any(|l| l.starts_with(node)), "{out}");
    }

    // The healthy nodes alone: no outlier, exit 0; JSON for dashboards.
    std::fs::remove_file(&a).unwrap();
    let v = validate(&["--json", "--merge"])
        .args([&files[0], &files[2]])
        .expect(0)
        .json();
    assert_eq!(v["nodes"].as_array().unwrap().len(), 2);
    assert_eq!(v["outliers"].as_array().unwrap().len(), 0);
    std::fs::write(dir.path().join("bad.json"), "{").unwrap();
    validate(&["--merge"])
        .arg(dir.path().join("bad.json"))
        .expect(2)
        .err_has("not a validate report");
}

/// A dev-profile bundle (the release one is the same layout) runs validate with no
/// cargo on PATH, using its own tensor-smoke.
#[test]
fn dist_bundle_validates_without_cargo() {
    let out = tempfile::tempdir().unwrap();
    Test::new(["dist", "--profile", "dev", "--out"])
        .stderr_stream(CARGO)
        .arg(out.path())
        .expect(0);
    let name = format!(
        "llmstudio-xtask-{}-{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    );
    let root = out.path().join(&name);
    assert!(out.path().join(format!("{name}.tar.gz")).is_file());
    assert!(root.join("templates/platforms.toml").is_file());
    let mut bundled = Command::new(root.join("bin/xtask"));
    bundled
        .env_remove("CARGO")
        .env("PATH", "/usr/bin:/bin")
        .current_dir(out.path());
    let ran = Test::from(bundled)
        .args(["validate", "--quick", "--json"])
        .stream(HOST)
        .expect(0);
    ran.err_has(&format!("{}/bin/tensor-smoke", root.display()));
    let v = ran.json();
    let cpu = checks(&v, "cpu");
    assert_eq!(cpu.len(), 3, "the bundled tensor-smoke ran: {cpu:?}");
}

fn uv_project(fixture: &str) -> Option<(tempfile::TempDir, PathBuf)> {
    let uv = find_uv()?;
    let py = python("3.12")?;
    let dir = copy_fixture(fixture);
    let o = run(Command::new(&uv)
        .arg("lock")
        .current_dir(dir.path())
        .env("UV_PYTHON", &py)
        .env("UV_PYTHON_DOWNLOADS", "never"));
    assert!(o.status.success(), "uv lock: {}", text(&o.stderr));
    Test::in_project(dir.path(), ["setup-dev"])
        .env("UV_PYTHON_DOWNLOADS", "never")
        .stderr_stream("uv's output")
        .expect(0);
    Some((dir, uv))
}

/// Level 3 with real torch and transformers from PyPI, on CPU (about 5 GB of venv).
#[test]
fn level_3_runs_torch_for_real() {
    if !required("torch") && std::env::var_os("XTASK_TORCH_TESTS").is_none() {
        eprintln!(
            "SKIPPED: installs torch from PyPI (5 GB): set XTASK_TORCH_TESTS=1 or XTASK_REQUIRE=torch"
        );
        return;
    }
    let Some((dir, _)) = uv_project("validate/torch") else {
        return;
    };
    let v = validate(&["--level", "4", "--quick", "--json"])
        .project(dir.path())
        .expect(0)
        .json();
    assert_eq!(v["levels_run"], serde_json::json!([1, 2, 3, 4]));
    assert!(v["versions"]["torch"].as_str().unwrap().starts_with('2'));
    let torch = checks(&v, "torch");
    let get = |name: &str| {
        torch
            .iter()
            .find(|c| c["name"].as_str().unwrap().starts_with(name))
            .copied()
            .unwrap_or_else(|| panic!("{name}: {torch:?}"))
    };
    assert_eq!(get("matmul")["status"], "pass");
    assert_eq!(get("softmax")["status"], "pass");
    let train = get("GPT-2 train");
    assert_eq!(train["status"], "pass", "{train}");
    assert!(
        train["reason"].as_str().unwrap().starts_with("loss "),
        "{train}"
    );
    assert_eq!(get("GPT-2 generate")["status"], "pass");
    assert!(get("torch GEMM")["rate"].as_f64().unwrap() > 0.0);
    // The torch script writes tensor-smoke's check fields: group, device, device_kind.
    for c in &torch {
        assert_eq!(c["level"], 3, "{c}");
    }
    if v["host"]["backend"] == "cpu" {
        assert_eq!(get("matmul")["device_kind"], "cpu");
        assert_eq!(get("matmul")["device"], "cpu");
        assert_eq!(get("torch sees a GPU")["status"], "skip");
    }
    if v["host"]["backend"] == "cpu" {
        assert_eq!(checks(&v, "pytest")[0]["status"], "skip");
    }
    // Level 4 for real on any host: a policy naming a device-agnostic test `any`. pytest's
    // output goes to stderr; stdout stays the one JSON document.
    let policy = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml"),
    )
    .unwrap()
    .replace(
        "[pytest.gpu.node-ids]\n",
        "[pytest.gpu.node-ids]\nany = [\"tests/test_gpu.py::test_device_agnostic\"]\n",
    );
    let policy_file = dir.path().join("policy-any.toml");
    std::fs::write(&policy_file, policy).unwrap();
    let ran = validate(&["--level", "4", "--quick", "--json"])
        .project(dir.path())
        .arg("--policy")
        .arg(&policy_file)
        .expect(0);
    ran.err_has("test_gpu.py::test_device_agnostic PASSED");
    let out = ran.stdout();
    let docs = serde_json::Deserializer::from_str(&out)
        .into_iter::<serde_json::Value>()
        .count();
    assert_eq!(docs, 1, "stdout is not one JSON document:\n{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let level4 = checks(&v, "pytest");
    assert_eq!(level4.len(), 1, "{level4:?}");
    assert_eq!(level4[0]["status"], "pass", "{}", level4[0]);
    assert_eq!(level4[0]["level"], 4);
    assert!(
        level4[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("1 passed"),
        "{}",
        level4[0]
    );
    // The wheel's own GPU code, held against the policy's fact: without a GPU too.
    let arch = get("torch GPU architectures");
    let why = arch["reason"].as_str().unwrap();
    assert!(why.contains(" reports sm_"), "{arch}");
    match arch["status"].as_str().unwrap() {
        "pass" => assert!(why.contains("as the policy's fact"), "{arch}"),
        // A torch newer than the policy's facts: the fact to add is spelled out.
        "skip" => assert!(why.contains("add [[torch.builds]] versions = "), "{arch}"),
        _ => panic!("the policy's fact disagrees with the wheel: {arch}"),
    }
}

/// Level 3 in an environment without torch: one line, exit 3.
#[test]
fn level_3_without_torch_is_exit_3() {
    let Some((dir, _)) = uv_project("devloop/app") else {
        return;
    };
    let err = validate(&["--level", "3", "--quick"])
        .project(dir.path())
        .expect(3)
        .stderr();
    let last = err.lines().last().unwrap();
    assert!(
        last.starts_with("error: level 3: torch is not installed")
            && last.contains("cargo xtask setup"),
        "{err}"
    );
}

/// Level 1 reads the installed torch's build from its files and holds it against each
/// NVIDIA GPU nvidia-smi lists (recorded outputs of a GH200, a Jetson Thor, a DGX Spark's
/// GB10, an RTX 5090), without starting Python and whether or not libcuda loads. The
/// kernel facts are those of this host's architecture.
#[cfg(target_os = "linux")]
#[test]
fn level_1_says_whether_torch_uses_each_gpu() {
    let arch = std::env::consts::ARCH;
    // (recording, model, torch, status, what the reason says)
    let x86 = arch == "x86_64";
    let cases: Vec<(&str, &str, &str, &str, &str)> = vec![
        (
            "nvidia-smi-gh200.csv",
            "NVIDIA GH200 480GB (9.0, Hopper)",
            "2.8.0",
            "fail",
            "CPU-only",
        ),
        (
            "nvidia-smi-gh200.csv",
            "NVIDIA GH200 480GB (9.0, Hopper)",
            "2.8.0+cu128",
            "pass",
            "sm_90",
        ),
        (
            "nvidia-smi-thor.csv",
            "NVIDIA Thor (11.0, Blackwell)",
            "2.8.0+cu128",
            "fail",
            "no kernels for sm_110",
        ),
        (
            "nvidia-smi-thor.csv",
            "NVIDIA Thor (11.0, Blackwell)",
            "2.8.0+cpu",
            "fail",
            "CPU-only",
        ),
        (
            "nvidia-smi-gb10.csv",
            "NVIDIA GB10 (12.1, Blackwell)",
            "2.8.0+cu128",
            "pass",
            "sm_120",
        ),
        (
            "nvidia-smi-rtx5090.csv",
            "NVIDIA GeForce RTX 5090 (12.0, Blackwell)",
            "2.9.0+cu130",
            "pass",
            "sm_120",
        ),
    ];
    let mut cases = cases;
    if x86 {
        // x86_64's cu126 build stops at Hopper: the fix is cu128.
        cases.push((
            "nvidia-smi-rtx5090.csv",
            "NVIDIA GeForce RTX 5090 (12.0, Blackwell)",
            "2.8.0+cu126",
            "fail",
            "pytorch-cu128 (CUDA 12.8) runs it",
        ));
        cases.push((
            "nvidia-smi-gb10.csv",
            "NVIDIA GB10 (12.1, Blackwell)",
            "2.8.0+cu126",
            "fail",
            "carries sm_50 sm_60 sm_70 sm_75 sm_80 sm_86 sm_90",
        ));
    }
    for (recording, model, torch, status, says) in cases {
        let (_bin, path) = recorded_nvidia_smi(recording);
        let project = venv_with_torch(torch);
        let ran = validate(&["--level", "1", "--json"])
            .project(project.path())
            .env("PATH", &path)
            .run();
        let v = ran.json();
        let check = checks(&v, "platform")
            .into_iter()
            .find(|c| c["name"] == "torch uses the GPU")
            .unwrap_or_else(|| panic!("{recording} {torch}: no torch check: {v}"))
            .clone();
        let why = check["reason"].as_str().unwrap();
        assert_eq!(check["status"], status, "{recording} {torch}: {why}");
        assert!(why.contains(model), "{recording} {torch}: {why}");
        assert!(why.contains(says), "{recording} {torch}: {why}");
        assert!(why.contains(&format!("torch {torch}")), "{why}");
        if status == "fail" {
            assert_eq!(ran.code(), Some(1), "{recording} {torch}");
        }
        if says == "CPU-only" {
            assert!(
                why.contains("`cargo xtask port`"),
                "the fix is named: {why}"
            );
        }
    }
}

/// What level 1 cannot know it says, with the value: a compute capability nvidia-smi
/// does not give, a torch the policy has no facts for, no torch at all.
#[cfg(target_os = "linux")]
#[test]
fn level_1_says_unknown_rather_than_guess() {
    let torch_check = |recording: &str, project: &std::path::Path| {
        let (_bin, path) = recorded_nvidia_smi(recording);
        let v = validate(&["--level", "1", "--json"])
            .project(project)
            .env("PATH", &path)
            .run()
            .json();
        checks(&v, "platform")
            .into_iter()
            .find(|c| c["name"] == "torch uses the GPU")
            .unwrap()
            .clone()
    };
    let c = torch_check(
        "nvidia-smi-unknown-cc.csv",
        venv_with_torch("2.8.0+cu128").path(),
    );
    assert_eq!(c["status"], "skip", "{c}");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("NVIDIA Future GPU: compute capability unknown (nvidia-smi: none)"),
        "{c}"
    );
    let c = torch_check(
        "nvidia-smi-gh200.csv",
        venv_with_torch("2.16.0+cu135").path(),
    );
    assert_eq!(c["status"], "skip", "{c}");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("no [[torch.builds]] fact for torch 2.16.0+cu135 with CUDA 13.5"),
        "{c}"
    );
    let empty = venv_with_torch("2.8.0");
    std::fs::remove_dir_all(empty.path().join(".venv")).unwrap();
    let c = torch_check("nvidia-smi-gh200.csv", empty.path());
    assert_eq!(c["status"], "skip", "{c}");
    assert!(
        c["reason"]
            .as_str()
            .unwrap()
            .contains("run `cargo xtask setup`"),
        "{c}"
    );
}
