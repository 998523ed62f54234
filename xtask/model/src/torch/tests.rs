use super::*;
use crate::policy::tests::shipped;

fn found(p: &Policy, target: &str, installed: &[(&str, &str)]) -> Found {
    from_lock(p.target(target).unwrap(), installed).unwrap()
}

fn judged(p: &Policy, target: &str, installed: &[(&str, &str)], asked: &[&str]) -> Judged {
    let t = p.target(target).unwrap();
    let asked: Vec<Asked> = asked.iter().map(|a| p.ask_gpu(a).unwrap()).collect();
    let f = from_lock(t, installed).unwrap();
    let gpus = gpus_for(p, t, &asked);
    judge(
        p,
        &t.arch(),
        t.accelerator.as_deref() == Some("cuda"),
        &f,
        &gpus,
        installed,
    )
}

#[test]
fn the_build_is_read_from_the_local_version() {
    assert_eq!(
        build_of_local("2.8.0+cu128"),
        Some(Build::Cuda("12.8".into()))
    );
    assert_eq!(
        build_of_local("2.9.0+cu130"),
        Some(Build::Cuda("13.0".into()))
    );
    assert_eq!(build_of_local("2.8.0+cpu"), Some(Build::Cpu));
    assert_eq!(build_of_local("2.1.0+cpu.cxx11.abi"), Some(Build::Cpu));
    assert_eq!(
        build_of_local("2.8.0+rocm6.3"),
        Some(Build::Rocm(Some("6.3".into())))
    );
    assert_eq!(build_of_local("2.8.0+xpu"), Some(Build::Xpu));
    assert_eq!(
        build_of_local("2.8.0+nv24.10"),
        Some(Build::Unknown("nv24.10".into()))
    );
    assert_eq!(build_of_local("2.8.0"), None);
    assert_eq!(Build::Cuda("12.8".into()).wire(), "cuda 12.8");
}

#[test]
fn without_a_local_version_the_runtime_it_pulls_in_tells() {
    let p = shipped();
    // PyPI's torch 2.8.0: CUDA 12.8 on x86_64, nothing on aarch64, MPS on macOS.
    let x86 = found(
        &p,
        "linux-x86_64-cuda",
        &[("torch", "2.8.0"), ("nvidia-cuda-runtime-cu12", "12.8.90")],
    );
    assert_eq!(x86.build, Build::Cuda("12.8".into()));
    assert!(
        x86.evidence.contains("nvidia-cuda-runtime-cu12 12.8.90"),
        "{}",
        x86.evidence
    );
    let arm = found(
        &p,
        "linux-aarch64-cuda",
        &[("torch", "2.8.0"), ("numpy", "2.3.0")],
    );
    assert_eq!(arm.build, Build::Cpu);
    let mac = found(&p, "macos-arm64-mps", &[("torch", "2.8.0")]);
    assert_eq!(mac.build, Build::Mps);
    // CUDA 13: unsuffixed runtime names, or cuda-toolkit.
    let cu13 = found(
        &p,
        "linux-aarch64-cuda",
        &[("torch", "2.11.0"), ("cuda-toolkit", "13.0.2")],
    );
    assert_eq!(cu13.build, Build::Cuda("13.0".into()));
    let cu13 = found(
        &p,
        "linux-aarch64-cuda",
        &[
            ("torch", "2.11.0"),
            ("nvidia-cuda-runtime", "13.0.96"),
            ("cuda-toolkit", "13.0.2"),
        ],
    );
    assert!(
        cu13.evidence.contains("nvidia-cuda-runtime 13.0.96"),
        "{}",
        cu13.evidence
    );
    assert!(from_lock(p.target("linux-aarch64-cuda").unwrap(), &[("numpy", "2")]).is_none());
}

#[test]
fn a_cpu_torch_on_a_cuda_target_is_a_finding_with_its_fix() {
    let p = shipped();
    let j = judged(&p, "linux-aarch64-cuda", &[("torch", "2.8.0")], &[]);
    assert_eq!(j.build, "cpu");
    assert_eq!(j.sm, None);
    assert_eq!(j.gpus.fails, ["GH200", "GB200", "GB300", "GB10"]);
    assert_eq!(j.findings.len(), 1, "{:?}", j.findings);
    assert!(
        j.findings[0].contains("CPU-only: the NVIDIA GPU is not used"),
        "{}",
        j.findings[0]
    );
    assert!(
        j.findings[0].contains("cargo xtask port"),
        "{}",
        j.findings[0]
    );
    assert_eq!(
        j.line(),
        "torch 2.8.0: CPU-only (no CUDA runtime package is installed with it here): not GH200 (sm_90), GB200 (sm_100), GB300 (sm_103), GB10 (sm_121)"
    );
    // The macOS build is no finding: its GPU is Apple's.
    let mac = judged(&p, "macos-arm64-mps", &[("torch", "2.8.0")], &[]);
    assert!(mac.findings.is_empty());
    assert_eq!(mac.build, "mps");
}

#[test]
fn kernels_for_the_promised_gpus_and_the_asked_ones() {
    let p = shipped();
    let j = judged(
        &p,
        "linux-aarch64-cuda",
        &[("torch", "2.9.1+cu128")],
        &["Thor"],
    );
    assert_eq!(
        j.sm.as_deref().unwrap(),
        ["sm_80", "sm_90", "sm_100", "sm_120"]
    );
    assert_eq!(j.gpus.runs, ["GH200", "GB200", "GB300", "GB10"]);
    assert_eq!(j.gpus.fails, ["Thor"]);
    assert_eq!(
        j.line(),
        "torch 2.9.1+cu128: CUDA 12.8, kernels for sm_80 sm_90 sm_100 sm_120: GH200, GB200, GB300, GB10 — not Thor (sm_110)"
    );
    assert_eq!(j.findings.len(), 1);
    assert!(
        j.findings[0].contains("pytorch-cu130 (CUDA 13.0) runs it"),
        "the same torch from cu130 has sm_110: {}",
        j.findings[0]
    );
    // A cu126 build on x86_64 has no Blackwell code: B200, B300 and the RTX 5090 fail.
    let j = judged(
        &p,
        "linux-x86_64-cuda",
        &[("torch", "2.8.0+cu126")],
        &["sm_120"],
    );
    assert_eq!(j.gpus.fails, ["B200", "B300", "RTX 5090", "sm_120"]);
    assert!(
        j.findings
            .iter()
            .all(|f| f.contains("pytorch-cu128 (CUDA 12.8) runs it")),
        "{:?}",
        j.findings
    );
    // A GPU of another architecture's machines is not judged there.
    let j = judged(
        &p,
        "linux-x86_64-cuda",
        &[("torch", "2.8.0+cu128")],
        &["GH200", "V100"],
    );
    assert!(!j.gpus.detail.iter().any(|d| d.gpu == "GH200"));
    assert_eq!(j.gpus.detail.last().unwrap().why, "sm_70");
    // PTX reaches what machine code does not.
    let j = judged(
        &p,
        "linux-x86_64-cuda",
        &[("torch", "2.9.0+cu130")],
        &["GB10"],
    );
    assert!(j.findings.is_empty(), "{:?}", j.findings);
}

#[test]
fn what_the_policy_does_not_know_is_said_not_guessed() {
    let p = shipped();
    let j = judged(&p, "linux-aarch64-cuda", &[("torch", "2.16.0+cu135")], &[]);
    assert_eq!(j.sm, None);
    assert!(
        j.kernels
            .starts_with("unknown: the policy has no [[torch.builds]] fact"),
        "{}",
        j.kernels
    );
    assert_eq!(j.gpus.unknown.len(), 4);
    assert!(j.findings.is_empty());
    let nightly = judged(
        &p,
        "linux-x86_64-cuda",
        &[("torch", "2.10.0.dev20250601+cu128")],
        &[],
    );
    assert!(nightly.kernels.contains("nightly"), "{}", nightly.kernels);
    let vendor = judged(&p, "linux-aarch64-cuda", &[("torch", "2.8.0+nv25.03")], &[]);
    assert_eq!(vendor.build, "unknown");
    assert!(vendor.findings.is_empty());
    assert!(
        vendor
            .line()
            .contains("unrecognised build (local version +nv25.03)")
    );
}

#[test]
fn torchvision_and_torchaudio_must_match_torch() {
    let p = shipped();
    let installed = [
        ("torch", "2.8.0+cu128"),
        ("torchvision", "0.23.0"),
        ("torchaudio", "2.7.1+cu128"),
    ];
    let j = judged(&p, "linux-aarch64-cuda", &installed, &[]);
    let bad: Vec<&str> = j
        .companions
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(bad, ["torchvision", "torchaudio"]);
    assert!(
        j.findings
            .iter()
            .any(|f| f.starts_with("torchvision 0.23.0: built as no local version")),
        "{:?}",
        j.findings
    );
    assert!(
        j.findings
            .iter()
            .any(|f| f.contains("pairs with torch 2.8 as 2.8.*, not 2.7.1+cu128")),
        "{:?}",
        j.findings
    );
    let good = [("torch", "2.8.0+cu128"), ("torchvision", "0.23.0+cu128")];
    let j = judged(&p, "linux-aarch64-cuda", &good, &[]);
    assert!(
        j.companions[0].ok && j.findings.is_empty(),
        "{:?}",
        j.findings
    );
}

#[test]
fn an_unknown_gpu_names_the_known_ones() {
    let p = shipped();
    let e = p.ask_gpu("H1000").unwrap_err();
    let line = crate::error::line_of(&e);
    assert!(
        line.starts_with("--gpu H1000: not a GPU the policy knows (V100, "),
        "{line}"
    );
    assert!(
        line.ends_with("give its compute capability as sm_XY, e.g. sm_90"),
        "{line}"
    );
    assert_eq!(crate::error::code_of(&e), crate::error::Code::Usage);
    assert_eq!(p.ask_gpu("sm_110").unwrap().cc.to_string(), "11.0");
    assert_eq!(p.ask_gpu("jetson thor").unwrap().name, "Thor");
    assert_eq!(
        p.family(crate::gpu::Cc::parse("12.1").unwrap()),
        Some("Blackwell")
    );
}

#[test]
fn the_installed_build_is_read_from_version_py() {
    // As PyPI's torch 2.15.0 for x86_64 writes it.
    let text = "from typing import Optional\n\n__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'rocm', 'xpu']\n__version__ = '2.15.0+cu132'\ndebug = False\ncuda: Optional[str] = '13.2'\ngit_version = 'd0f2af8b'\nhip: Optional[str] = None\nrocm: Optional[str] = None\nxpu: Optional[str] = None\n";
    let f = from_version_py(text, Os::Linux, &Arch::X86_64).unwrap();
    assert_eq!(f.version, "2.15.0+cu132");
    assert_eq!(f.build, Build::Cuda("13.2".into()));
    assert_eq!(f.evidence, "torch/version.py: cuda = '13.2'");
    let cpu = text.replace("'13.2'", "None").replace("+cu132", "+cpu");
    assert_eq!(
        from_version_py(&cpu, Os::Linux, &Arch::Aarch64)
            .unwrap()
            .build,
        Build::Cpu
    );
    assert_eq!(
        from_version_py(&cpu, Os::Macos, &Arch::Aarch64)
            .unwrap()
            .build,
        Build::Mps
    );
    let rocm = cpu.replace(
        "hip: Optional[str] = None",
        "hip: Optional[str] = '6.3.42131-fa1d09cbd'",
    );
    assert_eq!(
        from_version_py(&rocm, Os::Linux, &Arch::X86_64)
            .unwrap()
            .build,
        Build::Rocm(Some("6.3".into()))
    );
    assert!(from_version_py("debug = False\n", Os::Linux, &Arch::X86_64).is_none());
    // Old files without annotations.
    let old = "__version__ = '2.1.0'\ncuda = '12.1'\nhip = None\n";
    assert_eq!(
        from_version_py(old, Os::Linux, &Arch::X86_64)
            .unwrap()
            .build,
        Build::Cuda("12.1".into())
    );
}
