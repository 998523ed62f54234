//! `fleet`: a real two-node Slurm on loopback (`.ci/slurm-up`) runs a dist bundle's
//! validate on both nodes and the merge names each; Ctrl-C cancels the job; recorded
//! reports with one slow GPU flag that GPU; the Kubernetes manifest passes the
//! Kubernetes schemas (kubernetes-validate).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::*;

/// `xtask fleet merge fleet/gh200 ARGS...` in the fixtures folder.
fn merge_gh200(args: &[&str]) -> Test {
    Test::new(["fleet", "merge", "fleet/gh200"])
        .args(args)
        .current_dir(fixtures())
}

/// Recorded reports of three GH200 nodes; gh-002's second GPU runs SGEMM at a third of
/// the others'. Its CPU is slow too, which is not a GPU fault and is not flagged.
#[test]
fn a_gpu_at_a_third_of_the_fleet_is_flagged_by_node_and_card() {
    let ran = merge_gh200(&["--json"]).expect(1);
    ran.err_has("1 slow GPU check(s) on gh-002");
    let v = ran.json();
    let outliers = v["outliers"].as_array().unwrap();
    assert_eq!(outliers.len(), 1, "{outliers:?}");
    let slow = &outliers[0];
    assert_eq!(slow["node"], "gh-002");
    assert_eq!(slow["check"], "cuda cuBLAS SGEMM 4096x4096");
    assert_eq!(slow["gpu_serial"], "1652922011142");
    assert_eq!(slow["gpu_pci_bus_id"], "00000019:01:00.0");
    let fraction = slow["fraction"].as_f64().unwrap();
    assert!((0.30..0.36).contains(&fraction), "{fraction}");
    let states: Vec<(&str, &str)> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap(), n["state"].as_str().unwrap()))
        .collect();
    assert_eq!(
        states,
        [("gh-001", "ok"), ("gh-002", "slow"), ("gh-003", "ok")]
    );

    // The table names the card; validate --merge reads the same files the same way.
    merge_gh200(&[]).expect(1).snapshot("fleet-merge-gh200");
    Test::new(["validate", "--merge"])
        .args(["gh-001.json", "gh-002.json", "gh-003.json"])
        .current_dir(fixtures().join("fleet/gh200"))
        .expect(1)
        .out_has("gh-002: cuda cuBLAS SGEMM 4096x4096 [#1 NVIDIA GH200 480GB] (GPU-7f3e11a1-5b2c-4d8e-9f01-23456789ab11, serial 1652922011142, bus 00000019:01:00.0)");

    // A looser fraction lets it pass; a fraction outside (0, 1] is a usage error.
    merge_gh200(&["--slow-fraction", "0.3"]).expect(0);
    merge_gh200(&["--slow-fraction", "1.5"])
        .expect(2)
        .err_has("--slow-fraction 1.5")
        .snapshot("fleet-merge-bad-fraction");
    // Every node ran CUDA: --require cuda holds; --require mps does not (exit 3 only
    // when nothing failed, so with the outlier excused).
    merge_gh200(&["--slow-fraction", "0.3", "--require", "mps"]).expect(3);
}

#[test]
fn merge_refuses_what_is_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.json"), "{\"hello\": 1}").unwrap();
    Test::new(["fleet", "merge"])
        .arg(dir.path())
        .expect(2)
        .one_line_error("notes.json: not a validate report")
        .snapshot("fleet-merge-not-a-report");
    let empty = tempfile::tempdir().unwrap();
    Test::new(["fleet", "merge"])
        .arg(empty.path())
        .expect(2)
        .err_has("no reports");
}

fn kubernetes_validate() -> Option<PathBuf> {
    let found = which("kubernetes-validate");
    if found.is_none() {
        skip_or_fail(
            "kubernetes-validate",
            "kubernetes-validate is not on PATH (uv tool install kubernetes-validate)",
        );
    }
    found
}

/// `fleet render --scheduler kubernetes --nodes N`, more flags to add.
fn render_kubernetes(nodes: &str) -> Test {
    Test::new([
        "fleet",
        "render",
        "--scheduler",
        "kubernetes",
        "--nodes",
        nodes,
    ])
}

/// `kubernetes-validate --strict FILE`.
fn schemas(kv: &Path, manifest: &Path) -> Test {
    let mut c = Command::new(kv);
    c.arg("--strict").arg(manifest);
    Test::from(c)
}

#[test]
fn the_kubernetes_job_passes_the_kubernetes_schemas() {
    let out = tempfile::tempdir().unwrap();
    let manifest = out.path().join("fleet.json");
    render_kubernetes("8")
        .args(["--image", "registry.example/llmstudio-xtask:aarch64"])
        .args(["--gpus", "4", "--require", "cuda", "--namespace", "burn-in"])
        .arg("--output")
        .arg(&manifest)
        .expect(0);
    let json = std::fs::read_to_string(&manifest).unwrap();
    assert!(json.contains("\"completionMode\": \"Indexed\""), "{json}");
    assert!(json.contains("\"nvidia.com/gpu\": 4"), "{json}");
    // --image is required for Kubernetes; a bad name is refused before anything is written.
    render_kubernetes("2").expect(2).err_has("--image");
    render_kubernetes("2")
        .args(["--image", "x", "--job-name", "Fleet_A"])
        .expect(2)
        .err_has("--job-name \"Fleet_A\"");

    let Some(kv) = kubernetes_validate() else {
        return;
    };
    schemas(&kv, &manifest).expect(0);
    // The bundle from a claim instead of the image.
    let mounted = out.path().join("mounted.json");
    render_kubernetes("2")
        .args([
            "--image",
            "ubuntu:24.04",
            "--bundle-claim",
            "llmstudio-xtask",
        ])
        .args(["--bundle", "/bundle", "--output"])
        .arg(&mounted)
        .expect(0);
    schemas(&kv, &mounted).expect(0);
    // The validator is not a rubber stamp: a count that is a string fails it.
    let broken = out.path().join("broken.json");
    std::fs::write(
        &broken,
        json.replace("\"completions\": 8", "\"completions\": \"eight\""),
    )
    .unwrap();
    let o = schemas(&kv, &broken).run();
    assert_ne!(o.code(), Some(0), "{o:?}");
}

/// Whether a Slurm cluster with idle node1 and node2 answers (`.ci/slurm-up`).
fn slurm() -> bool {
    let idle = Command::new("sinfo")
        .args(["-h", "-N", "-t", "idle", "-o", "%N"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout))
        .unwrap_or_default();
    let mut names: Vec<&str> = idle.lines().collect();
    names.sort_unstable();
    names.dedup();
    if names == ["node1", "node2"] {
        return true;
    }
    skip_or_fail(
        "slurm",
        &format!(
            "no Slurm cluster with idle node1 and node2 (sinfo: {:?}); run `bash .ci/slurm-up` and export SLURM_CONF",
            idle.trim()
        ),
    );
    false
}

fn dist_bundle(out: &Path) -> PathBuf {
    Test::new(["dist", "--profile", "dev", "--out"])
        .stderr_stream(CARGO)
        .arg(out)
        .expect(0);
    out.join(format!(
        "llmstudio-xtask-{}-{}",
        std::env::consts::OS,
        std::env::consts::ARCH
    ))
}

/// Both parts share the two nodes, so they run in order in one test.
#[test]
fn slurm_two_nodes_report_and_a_cancelled_run_leaves_no_job() {
    if !slurm() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let bundle = dist_bundle(work.path());
    let xtask = bundle.join("bin/xtask");
    both_nodes_report(&xtask, work.path());
    ctrl_c_cancels_a_pending_job(&xtask, work.path());
}

/// The bundle's own binary at `xtask`, run from `work` with relative paths.
fn bundled(xtask: &Path, work: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(xtask);
    c.args(args).current_dir(work);
    c
}

/// The id in a `submitted job ID: ...` line.
fn submitted(line: &str) -> Option<String> {
    let rest = line.strip_prefix("submitted job ")?;
    rest.split(':').next().map(str::to_string)
}

fn both_nodes_report(xtask: &Path, work: &Path) {
    let args = ["fleet", "validate", "--scheduler", "slurm", "--nodes", "2"];
    let started = Instant::now();
    let ran = Test::from(bundled(xtask, work, &args))
        .args(["--quick", "--reports", "fleet-reports", "--json"])
        .stream("the nodes' own facts and the scheduler's progress")
        .expect(0);
    eprintln!(
        "fleet validate, submit to merged table: {:.1?}",
        started.elapsed()
    );
    ran.err_has("node1 reported");
    let (v, err) = (ran.json(), ran.stderr());
    let nodes: Vec<(&str, &str)> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap(), n["state"].as_str().unwrap()))
        .collect();
    assert_eq!(nodes, [("node1", "ok"), ("node2", "ok")], "{err}");
    // A quick job may finish between two polls: then it is seen completed, not running.
    assert!(
        err.contains(" running on node[1-2]") || err.contains(" completed on node[1-2]"),
        "{err}"
    );
    let id = err
        .lines()
        .find_map(submitted)
        .unwrap_or_else(|| panic!("no job id in {err}"));
    let dir = work.join("fleet-reports").join(format!("job-{id}"));
    for node in ["node1", "node2"] {
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{node}.json"))).unwrap())
                .unwrap();
        assert_eq!(r["host"]["node"], node);
        assert_eq!(r["host"]["job"], id.as_str());
    }
    // The batch script is the one `fleet render` writes.
    let args = ["fleet", "render", "--scheduler", "slurm", "--nodes", "2"];
    let rendered = Test::from(bundled(xtask, work, &args))
        .args(["--quick", "--reports", "fleet-reports"])
        .expect(0)
        .stdout();
    let written = std::fs::read_to_string(work.join("fleet-reports/xtask-fleet.sbatch")).unwrap();
    assert_eq!(rendered, written);
}

/// Both nodes busy: the fleet job waits; Ctrl-C cancels it, exit 130, no job left.
fn ctrl_c_cancels_a_pending_job(xtask: &Path, work: &Path) {
    let mut sbatch = Command::new("sbatch");
    sbatch
        .args(["--parsable", "--nodes=2", "--exclusive"])
        .args([
            "--job-name=xtask-test-blocker",
            "--output=/dev/null",
            "--wrap",
            "sleep 300",
        ]);
    let blocker = Test::from(sbatch).expect(0).stdout().trim().to_string();
    let mut cmd = bundled(
        xtask,
        work,
        &["fleet", "validate", "--nodes", "2", "--quick"],
    );
    cmd.args(["--reports", "fleet-reports"]);
    let (mut child, rx) = spawn_reading_stderr(&mut cmd);
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut fleet_job = None;
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        fleet_job = fleet_job.or_else(|| submitted(&line));
        let pending = line.contains(" pending");
        seen.push(line);
        if pending {
            break;
        }
    }
    let fleet_job = fleet_job.unwrap_or_else(|| panic!("no job submitted: {seen:?}"));
    signal(&child, rustix::process::Signal::INT);
    let status = child.wait().unwrap();
    seen.extend(rx.try_iter());
    let _ = Command::new("scancel").arg(&blocker).status();
    assert_eq!(status.code(), Some(130), "{seen:?}");
    assert!(
        seen.iter()
            .any(|l| l.contains(&format!("cancelled job {fleet_job}"))),
        "{seen:?}"
    );
    let q = run(Command::new("squeue").args(["-h", "-j", &fleet_job, "-o", "%i %T"]));
    let left = text(&q.stdout);
    assert!(
        left.trim().is_empty() || left.contains("CANCELLED"),
        "job {fleet_job} still queued: {left}"
    );
    let q = run(Command::new("squeue").args(["-h", "-o", "%i %j %T"]));
    assert!(
        !text(&q.stdout).contains(&format!("{fleet_job} ")),
        "{}",
        text(&q.stdout)
    );
}

#[test]
fn fleet_validate_names_what_is_missing() {
    // No bundle here, and a bundle path that is not one: usage errors naming the flag.
    let dir = tempfile::tempdir().unwrap();
    let err = Test::new(["fleet", "validate", "--nodes", "2", "--bundle"])
        .arg(dir.path())
        .expect(2)
        .stderr();
    assert!(
        err.starts_with(&format!("error: --bundle {}", dir.path().display())),
        "{err}"
    );
    // A bundle's shape but no Slurm on PATH: exit 3, naming the program.
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("bin/xtask"), "").unwrap();
    std::fs::write(dir.path().join("templates/platforms.toml"), "").unwrap();
    Test::new(["fleet", "validate", "--nodes", "2", "--bundle"])
        .arg(dir.path())
        .env("PATH", dir.path().join("bin"))
        .expect(3)
        .err_has("no `sbatch` on PATH");
    Test::new(["fleet", "validate", "--nodes", "2", "--level", "3"])
        .expect(2)
        .err_has("--project");
}
