//! The tensor-smoke binary: exit codes, JSON, the CPU reference, CUDA's missing-driver
//! skip, and the wgpu path on whatever Vulkan driver is present (lavapipe in CI).

use std::process::{Command, Output};

fn smoke(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tensor-smoke"))
        .args(args)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .unwrap()
}

fn report(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

fn required(what: &str) -> bool {
    std::env::var("XTASK_REQUIRE").is_ok_and(|v| v.split(',').any(|x| x == what || x == "all"))
}

#[test]
fn cpu_reference_passes() {
    let o = smoke(&["--backend", "cpu", "--quick", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let r = report(&o);
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 3);
    for c in checks {
        assert_eq!(c["status"], "pass", "{c}");
        assert!(c["rate"].as_f64().unwrap() > 0.0, "{c}");
        assert!(c["unit"].is_string());
    }
}

#[test]
fn usage_errors_are_exit_2() {
    assert_eq!(smoke(&["--backend", "tpu"]).status.code(), Some(2));
    assert_eq!(smoke(&["--frobnicate"]).status.code(), Some(2));
    assert_eq!(smoke(&["--require"]).status.code(), Some(2));
}

#[cfg(feature = "cuda")]
#[test]
fn cuda_without_a_driver_is_a_skip_and_required_is_exit_3() {
    if tensor_smoke::cuda::unavailable().is_none() {
        eprintln!("SKIPPED: this machine has a working CUDA driver; the GPU checks run instead");
        let o = smoke(&["--backend", "cuda", "--quick", "--json"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&o.stdout)
        );
        return;
    }
    let o = smoke(&["--backend", "cuda", "--json"]);
    assert_eq!(o.status.code(), Some(0));
    let r = report(&o);
    let c = &r["checks"][0];
    assert_eq!(c["status"], "skip");
    assert!(
        c["reason"].as_str().unwrap().contains("driver")
            || c["reason"].as_str().unwrap().contains("libcuda"),
        "{c}"
    );
    let o = smoke(&["--backend", "cuda", "--require", "cuda"]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--require cuda"));
}

#[cfg(feature = "wgpu")]
#[test]
fn wgpu_runs_on_the_vulkan_or_metal_adapter() {
    let o = smoke(&["--backend", "wgpu", "--quick", "--json"]);
    let r = report(&o);
    let checks = r["checks"].as_array().unwrap();
    if checks[0]["status"] == "skip" {
        assert!(
            !required("vulkan"),
            "a Vulkan driver is required here (XTASK_REQUIRE) but: {}",
            checks[0]["reason"]
        );
        eprintln!("SKIPPED: {}", checks[0]["reason"]);
        return;
    }
    assert_eq!(o.status.code(), Some(0), "{r}");
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    for want in [
        "fill (WGSL)",
        "saxpy (WGSL)",
        "host<->device round trip",
        "device copy",
    ] {
        assert!(names.contains(&want), "{names:?}");
    }
    assert!(names.iter().any(|n| n.starts_with("matmul")), "{names:?}");
    for c in checks {
        assert_eq!(c["status"], "pass", "{c}");
        assert!(
            c["device"].as_str().unwrap().contains("Vulkan")
                || c["device"].as_str().unwrap().contains("Metal")
        );
        // The adapter's kind: a software rasteriser (lavapipe) computes on the CPU.
        let device = c["device"].as_str().unwrap();
        let want = if device.contains(", Cpu)") {
            "cpu"
        } else if device.contains("Metal") {
            "metal"
        } else {
            "vulkan"
        };
        assert_eq!(c["device_kind"], want, "{c}");
    }
    let o = smoke(&["--backend", "wgpu", "--quick", "--require", "gpu"]);
    assert_eq!(o.status.code(), Some(0));
}
