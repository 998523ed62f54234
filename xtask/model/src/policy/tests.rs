use super::*;

pub(crate) fn shipped() -> Policy {
    let path = Utf8Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../templates/platforms.toml"
    ));
    Policy::parse(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn shipped_policy_loads() {
    let p = shipped();
    let names: Vec<_> = p.targets.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        ["linux-x86_64-cuda", "linux-aarch64-cuda", "macos-arm64-mps"]
    );
    assert_eq!(p.target("arm64-cuda").unwrap().name, "linux-aarch64-cuda");
    assert_eq!(
        p.target("amd64-cuda").unwrap().docker_platform.as_deref(),
        Some("linux/amd64")
    );
    assert!(p.target("riscv").is_err());
    assert_eq!(
        p.environments(),
        ["sys_platform == 'linux'", "sys_platform == 'darwin'"]
    );
    let req = |s: &str| pep::requirement(s).unwrap();
    let linux = |index: &str| vec![(index.to_string(), "sys_platform == 'linux'".to_string())];
    // The app's pin keeps CUDA 12.8; a torch that cu128 stopped at moves to cu130;
    // unbounded means the newest, so cu130; macOS never gets a source (PyPI).
    assert_eq!(
        p.torch_sources(Some(&req("torch==2.8.0"))),
        linux("pytorch-cu128")
    );
    assert_eq!(
        p.torch_sources(Some(&req("torch>=2.7,<2.12"))),
        linux("pytorch-cu128")
    );
    assert_eq!(
        p.torch_sources(Some(&req("torch==2.15.0"))),
        linux("pytorch-cu130")
    );
    assert_eq!(
        p.torch_sources(Some(&req("torch>=2.7"))),
        linux("pytorch-cu130")
    );
    assert_eq!(p.torch_sources(None), linux("pytorch-cu130"));
    assert!(p.torch_source("macos-arm64-mps", None).is_none());
    assert_eq!(
        p.target_for_host(Os::Linux, &Arch::Aarch64).unwrap().name,
        "linux-aarch64-cuda"
    );
    assert_eq!(
        p.target_for_host(Os::Macos, &Arch::Aarch64).unwrap().name,
        "macos-arm64-mps"
    );
    assert!(p.target_for_host(Os::Macos, &Arch::X86_64).is_none());
}

#[test]
fn version_dependent_rules() {
    let p = shipped();
    let rule = |s: &str| {
        p.rule_for(&pep::requirement(s).unwrap())
            .map(|r| r.targets.len())
    };
    assert_eq!(rule("bitsandbytes==0.47.0"), Some(2));
    assert_eq!(rule("bitsandbytes==0.45.5"), Some(1));
    assert_eq!(rule("bitsandbytes"), Some(2));
    assert_eq!(rule("bitsandbytes>=0.45"), Some(2));
    assert_eq!(rule("bitsandbytes<0.47"), Some(1));
    assert_eq!(rule("Flash_Attn==2.8.3"), Some(2));
    assert_eq!(rule("deepspeed"), Some(2));
    assert_eq!(rule("deepspeed==0.17.5"), Some(1));
    assert_eq!(rule("triton==3.4.0"), Some(1));
    assert_eq!(rule("triton==3.5.0"), Some(2));
    assert_eq!(rule("bitsandbytes==0.49.0"), Some(2));
    for cuda13 in [
        "nvidia-cublas",
        "nvidia-cuda-runtime",
        "cuda-toolkit",
        "nvidia-cudnn-cu13",
    ] {
        let r = p.rule_for(&pep::requirement(cuda13).unwrap());
        assert!(r.is_some_and(|r| r.never_list), "{cuda13}");
    }
    assert_eq!(rule("nvidia-ml-py"), None);
    assert!(
        p.rule_for(&pep::requirement("nvidia-cudnn-cu12").unwrap())
            .unwrap()
            .never_list
    );
    assert_eq!(rule("numpy"), None);
}

fn broken(from: &str, to: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../templates/platforms.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{from}");
    let bad = text.replacen(from, to, 1);
    format!("{:#}", Policy::parse(&bad).unwrap_err())
}

#[test]
fn bad_policies_say_where() {
    let e = broken(r#"index = "pytorch-cu128""#, r#"index = "pytorch-cu999""#);
    assert!(
        e.contains("pytorch-cu999") && e.contains("not an index"),
        "{e}"
    );
    let e = broken(
        r#"marker = "sys_platform != 'darwin'""#,
        r#"marker = "sys_platform !! 'darwin'""#,
    );
    assert!(e.contains("bitsandbytes >=0.49: marker"), "{e}");
    let e = broken(
        r#"marker = "sys_platform == 'linux' and platform_machine == 'aarch64'""#,
        r#"marker = "sys_platform == 'linux'""#,
    );
    assert!(e.contains("also holds on target linux-x86_64-cuda"), "{e}");
    let e = broken("[python]", "[python]\nbogus = 1");
    assert!(e.starts_with("8:1:") || e.contains("bogus"), "{e}");
    let e = broken(
        r#"name = "flash-attn""#,
        r#"name = "flash-attn"
versions = ">>1""#,
    );
    assert!(e.contains("flash-attn >>1: versions"), "{e}");
    let e = broken(r#"wheels = []"#, r#"wheels = ["linux-riscv"]"#);
    assert!(e.contains("unknown target \"linux-riscv\""), "{e}");
}

#[test]
fn index_urls_are_checked_as_urls() {
    for ok in [
        "https://download.example/whl/cu128",
        "http://127.0.0.1:8080/simple",
        "file:///srv/wheels",
    ] {
        assert!(check_index("ix", ok).is_ok(), "{ok}");
    }
    for bad in [
        "download.example/whl",
        "https://",
        "ftp://mirror.example/whl",
        "https://mirror.example/a b",
        "https://exa mple/whl",
    ] {
        let e = check_index("ix", bad).unwrap_err().to_string();
        assert!(e.contains("is not a URL"), "{bad}: {e}");
    }
    assert!(check_index("a b", "https://x.example").is_err());
}

#[test]
fn a_host_target_is_unsupported_only_as_text() {
    let p = shipped();
    let t = HostTarget::new(p.target("arm64-cuda").ok());
    assert_eq!(t.name(), Some("linux-aarch64-cuda"));
    let none = HostTarget::new(None);
    assert_eq!(none.name(), None);
    assert_eq!(format!("[{none:13}]"), "[unsupported  ]");
    let json = |t: &HostTarget| String::from(t.clone());
    assert_eq!(json(&none), "unsupported");
    assert_eq!(HostTarget::from(json(&t)), t);
    assert_eq!(HostTarget::from(json(&none)), none);
}

#[test]
fn bad_gpu_facts_say_where() {
    let cases = [
        (
            r#"gpus = ["GH200", "GB200", "GB300", "GB10"]"#,
            r#"gpus = ["GH200", "GH300"]"#,
            "[targets.linux-aarch64-cuda] gpus: \"GH300\" is not in [[gpus]] (known: V100,",
        ),
        (
            r#"gpus = ["A100", "#,
            r#"gpus = ["GB10", "#,
            "[targets.linux-x86_64-cuda] gpus: \"GB10\" comes in aarch64 machines only",
        ),
        (
            "accelerator = \"mps\"\n",
            "accelerator = \"mps\"\ngpus = [\"A100\"]\n",
            "is an NVIDIA GPU and the target's accelerator is not cuda",
        ),
        (
            "accelerator = \"mps\"\n",
            "accelerator = \"metal\"\n",
            "accelerator \"metal\" is not cuda or mps",
        ),
        (
            "name = \"GB10\"\ncc = \"12.1\"",
            "name = \"GB10\"\ncc = \"121\"",
            "[[gpus]] GB10: cc \"121\" is not a compute capability",
        ),
        (
            "name = \"H200\"\n",
            "name = \"H100\"\n",
            "[[gpus]] H100: the name \"H100\" is taken by [[gpus]] H100",
        ),
        (
            r#"arch-list = "9.0;10.0;12.0""#,
            r#"arch-list = "9.0;10.0;Blackwell""#,
            "[[torch.builds]] torch >=2.7,<2.9 CUDA 12.8 aarch64: arch-list: \"Blackwell\" is not an architecture",
        ),
        (
            "cuda = \"13.2\"\narch = \"x86_64\"",
            "cuda = \"13.2\"\narch = \"amd64\"",
            "arch \"amd64\" is not x86_64 or aarch64",
        ),
        (
            "cuda = \"13.2\"",
            "cuda = \"cu132\"",
            "cuda \"cu132\" is not a CUDA version X.Y",
        ),
        (
            "\"9.0\" = \"Hopper\"",
            "\"9\" = \"Hopper\"",
            "[gpu-families] \"9\" is not a compute capability",
        ),
    ];
    for (from, to, says) in cases {
        let e = broken(from, to);
        assert!(e.contains(says), "{to}: {e}");
    }
}

#[test]
fn the_build_facts_are_found_by_release_cuda_and_arch() {
    let p = shipped();
    let fact = |v: &str, cuda: &str, arch: Arch| {
        p.build_fact(v, cuda, &arch)
            .map(|f| f.list.sm_names().join(" "))
    };
    assert_eq!(
        fact("2.8.0+cu128", "12.8", Arch::X86_64).as_deref(),
        Some("sm_70 sm_75 sm_80 sm_86 sm_90 sm_100 sm_120")
    );
    assert_eq!(
        fact("2.9.1+cu128", "12.8", Arch::Aarch64).as_deref(),
        Some("sm_80 sm_90 sm_100 sm_120")
    );
    assert!(
        fact("2.9.0+cu130", "13.0", Arch::Aarch64)
            .unwrap()
            .contains("sm_110")
    );
    assert_eq!(fact("2.8.0rc1+cu128", "12.8", Arch::X86_64), None);
    assert_eq!(fact("2.8.0", "12.7", Arch::X86_64), None);
    // Every promised GPU of every CUDA target has a family.
    for t in &p.targets {
        for g in p.promised(t) {
            assert!(p.family(g.cc).is_some(), "{}", g.name);
        }
    }
}
