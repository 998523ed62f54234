//! Every WGSL shader parses, validates, and translates to Metal Shading Language with naga,
//! so Metal translation errors show up on Linux; the PTX assembles with ptxas when present.

use std::path::PathBuf;
use std::process::Command;

fn msl(name: &str, src: &str) -> String {
    let module = naga::front::wgsl::parse_str(src)
        .unwrap_or_else(|e| panic!("{name}: {}", e.emit_to_string(src)));
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| panic!("{name}: validation: {e:?}"));
    let options = naga::back::msl::Options::default();
    let pipeline = naga::back::msl::PipelineOptions::default();
    let (out, _) = naga::back::msl::write_string(&module, &info, &options, &pipeline)
        .unwrap_or_else(|e| panic!("{name}: MSL: {e:?}"));
    out
}

#[test]
fn wgsl_translates_to_metal() {
    let v = msl("vector.wgsl", tensor_smoke::WGSL_VECTOR);
    assert!(v.contains("kernel void fill"), "{v}");
    assert!(v.contains("kernel void saxpy"), "{v}");
    let m = msl("matmul.wgsl", tensor_smoke::WGSL_MATMUL);
    assert!(m.contains("kernel void matmul"), "{m}");
    assert!(
        m.contains("threadgroup"),
        "workgroup memory must map to threadgroup memory: {m}"
    );
}

fn ptxas() -> Option<PathBuf> {
    if let Ok(p) = std::env::var("PTXAS") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("ptxas"))
        .find(|p| p.is_file())
}

#[test]
fn ptx_assembles_for_current_gpus() {
    let required = std::env::var("XTASK_REQUIRE")
        .is_ok_and(|v| v.split(',').any(|x| x == "ptxas" || x == "all"));
    let Some(ptxas) = ptxas() else {
        assert!(
            !required,
            "ptxas is required here (XTASK_REQUIRE) but neither $PTXAS nor PATH has it"
        );
        eprintln!(
            "SKIPPED: no ptxas (pip install nvidia-cuda-nvcc-cu12 and set PTXAS) to check the embedded PTX"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("tensor-smoke-ptx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("kernels.ptx");
    std::fs::write(&src, tensor_smoke::PTX).unwrap();
    // Volta (V100), Ampere (A100), Hopper (H100 / GH200).
    for arch in ["sm_70", "sm_80", "sm_90"] {
        let out = Command::new(&ptxas)
            .arg(format!("-arch={arch}"))
            .arg(&src)
            .arg("-o")
            .arg(dir.join(format!("{arch}.cubin")))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ptxas {arch}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
