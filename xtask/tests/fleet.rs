//! `fleet`: a real two-node Slurm on loopback (`.ci/slurm-up`) runs a dist bundle's
//! validate on both nodes and the merge names each; Ctrl-C cancels the job; recorded
//! reports with one slow GPU flag that GPU; the Kubernetes manifest passes the
//! Kubernetes schemas (kubernetes-validate).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::*;

fn json(stdout: &[u8]) -> serde_json::Value {
    serde_json::from_slice(stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(stdout)))
}

/// Recorded reports of three GH200 nodes; gh-002's second GPU runs SGEMM at a third of
/// the others'. Its CPU is slow too, which is not a GPU fault and is not flagged.
#[test]
fn a_gpu_at_a_third_of_the_fleet_is_flagged_by_node_and_card() {
    let fixtures = fixtures();
    let o = run(xtask()
        .args(["fleet", "merge", "fleet/gh200", "--json"])
        .current_dir(&fixtures));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let v = json(&o.stdout);
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
    assert!(
        text(&o.stderr).contains("1 slow GPU check(s) on gh-002"),
        "{}",
        text(&o.stderr)
    );

    // The table names the card; validate --merge reads the same files the same way.
    let o = run(xtask()
        .args(["validate", "--merge"])
        .args(["gh-001.json", "gh-002.json", "gh-003.json"])
        .current_dir(fixtures.join("fleet/gh200")));
    assert_eq!(o.status.code(), Some(1));
    let table = text(&o.stdout);
    assert!(
        table.contains("gh-002: cuda cuBLAS SGEMM 4096x4096 [#1 NVIDIA GH200 480GB] (GPU-7f3e11a1-5b2c-4d8e-9f01-23456789ab11, serial 1652922011142, bus 00000019:01:00.0)"),
        "{table}"
    );

    // A looser fraction lets it pass; a fraction outside (0, 1] is a usage error.
    let o = run(xtask()
        .args(["fleet", "merge", "fleet/gh200", "--slow-fraction", "0.3"])
        .current_dir(&fixtures));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = run(xtask()
        .args(["fleet", "merge", "fleet/gh200", "--slow-fraction", "1.5"])
        .current_dir(&fixtures));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--slow-fraction 1.5"));
    // Every node ran CUDA: --require cuda holds; --require mps does not (exit 3 only
    // when nothing failed, so with the outlier excused).
    let o = run(xtask()
        .args(["fleet", "merge", "fleet/gh200", "--slow-fraction", "0.3"])
        .args(["--require", "mps"])
        .current_dir(&fixtures));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
}

#[test]
fn merge_refuses_what_is_not_a_report() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.json"), "{\"hello\": 1}").unwrap();
    let o = run(xtask().args(["fleet", "merge"]).arg(dir.path()));
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(err.contains("notes.json: not a validate report"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    let empty = tempfile::tempdir().unwrap();
    let o = run(xtask().args(["fleet", "merge"]).arg(empty.path()));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("no reports"));
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
fn render_kubernetes(nodes: &str) -> Command {
    let mut c = xtask();
    c.args([
        "fleet",
        "render",
        "--scheduler",
        "kubernetes",
        "--nodes",
        nodes,
    ]);
    c
}

#[test]
fn the_kubernetes_job_passes_the_kubernetes_schemas() {
    let out = tempfile::tempdir().unwrap();
    let manifest = out.path().join("fleet.json");
    let o = run(render_kubernetes("8")
        .args([
            "--image",
            "registry.example/llmstudio-xtask:aarch64",
            "--gpus",
            "4",
        ])
        .args(["--require", "cuda", "--namespace", "burn-in", "--output"])
        .arg(&manifest));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let json = std::fs::read_to_string(&manifest).unwrap();
    assert!(json.contains("\"completionMode\": \"Indexed\""), "{json}");
    assert!(json.contains("\"nvidia.com/gpu\": 4"), "{json}");
    // --image is required for Kubernetes; a bad name is refused before anything is written.
    let o = run(&mut render_kubernetes("2"));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--image"), "{}", text(&o.stderr));
    let o = run(render_kubernetes("2").args(["--image", "x", "--job-name", "Fleet_A"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--job-name \"Fleet_A\""));

    let Some(kv) = kubernetes_validate() else {
        return;
    };
    let o = run(Command::new(&kv).arg("--strict").arg(&manifest));
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    // The bundle from a claim instead of the image.
    let mounted = out.path().join("mounted.json");
    let o = run(render_kubernetes("2")
        .args([
            "--image",
            "ubuntu:24.04",
            "--bundle-claim",
            "llmstudio-xtask",
        ])
        .args(["--bundle", "/bundle", "--output"])
        .arg(&mounted));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let o = run(Command::new(&kv).arg("--strict").arg(&mounted));
    assert!(o.status.success(), "{}{}", text(&o.stdout), text(&o.stderr));
    // The validator is not a rubber stamp: a count that is a string fails it.
    let broken = out.path().join("broken.json");
    std::fs::write(
        &broken,
        json.replace("\"completions\": 8", "\"completions\": \"eight\""),
    )
    .unwrap();
    let o = run(Command::new(&kv).arg("--strict").arg(&broken));
    assert!(!o.status.success(), "{}", text(&o.stdout));
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
    let o = run(xtask().args(["dist", "--profile", "dev", "--out"]).arg(out));
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
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

    // From the parent folder, relative paths, the bundle's own binary.
    let started = Instant::now();
    let o = run(Command::new(&xtask)
        .args(["fleet", "validate", "--scheduler", "slurm", "--nodes", "2"])
        .args(["--quick", "--reports", "fleet-reports", "--json"])
        .current_dir(work.path()));
    let took = started.elapsed();
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    eprintln!("fleet validate, submit to merged table: {took:.1?}");
    let v = json(&o.stdout);
    let nodes: Vec<(&str, &str)> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap(), n["state"].as_str().unwrap()))
        .collect();
    assert_eq!(nodes, [("node1", "ok"), ("node2", "ok")], "{err}");
    assert!(err.contains("node1 reported"), "{err}");
    // A quick job may finish between two polls: then it is seen completed, not running.
    assert!(
        err.contains(" running on node[1-2]") || err.contains(" completed on node[1-2]"),
        "{err}"
    );
    let id = err
        .lines()
        .find_map(|l| l.strip_prefix("submitted job "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no job id in {err}"))
        .to_string();
    let dir = work.path().join("fleet-reports").join(format!("job-{id}"));
    for node in ["node1", "node2"] {
        let r: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{node}.json"))).unwrap())
                .unwrap();
        assert_eq!(r["host"]["node"], node);
        assert_eq!(r["host"]["job"], id.as_str());
    }
    // The batch script is the one `fleet render` writes.
    let rendered = run(Command::new(&xtask)
        .args([
            "fleet",
            "render",
            "--scheduler",
            "slurm",
            "--nodes",
            "2",
            "--quick",
        ])
        .args(["--reports", "fleet-reports"])
        .current_dir(work.path()));
    assert_eq!(
        text(&rendered.stdout),
        std::fs::read_to_string(work.path().join("fleet-reports/xtask-fleet.sbatch")).unwrap()
    );

    // Both nodes busy: the fleet job waits; Ctrl-C cancels it, exit 130, no job left.
    let blocker = run(Command::new("sbatch").args([
        "--parsable",
        "--nodes=2",
        "--exclusive",
        "--job-name=xtask-test-blocker",
        "--output=/dev/null",
        "--wrap",
        "sleep 300",
    ]));
    assert!(blocker.status.success(), "{}", text(&blocker.stderr));
    let blocker = text(&blocker.stdout).trim().to_string();
    let mut child = Command::new(&xtask)
        .args(["fleet", "validate", "--nodes", "2", "--quick"])
        .args(["--reports", "fleet-reports"])
        .current_dir(work.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut fleet_job = None;
    while Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        if let Some(rest) = line.strip_prefix("submitted job ") {
            fleet_job = rest.split(':').next().map(str::to_string);
        }
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
    let o = run(xtask()
        .args(["fleet", "validate", "--nodes", "2", "--bundle"])
        .arg(dir.path()));
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).starts_with(&format!("error: --bundle {}", dir.path().display())),
        "{}",
        text(&o.stderr)
    );
    // A bundle's shape but no Slurm on PATH: exit 3, naming the program.
    std::fs::create_dir_all(dir.path().join("bin")).unwrap();
    std::fs::create_dir_all(dir.path().join("templates")).unwrap();
    std::fs::write(dir.path().join("bin/xtask"), "").unwrap();
    std::fs::write(dir.path().join("templates/platforms.toml"), "").unwrap();
    let o = run(xtask()
        .args(["fleet", "validate", "--nodes", "2", "--bundle"])
        .arg(dir.path())
        .env("PATH", dir.path().join("bin")));
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("no `sbatch` on PATH"),
        "{}",
        text(&o.stderr)
    );
    let o = run(xtask().args(["fleet", "validate", "--nodes", "2", "--level", "3"]));
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("--project"), "{}", text(&o.stderr));
}
