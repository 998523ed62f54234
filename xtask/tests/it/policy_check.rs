//! `cargo xtask policy check` against indexes served on loopback in both formats the
//! Simple API has: PEP 691 JSON (the stand-in for PyPI) and PEP 503 HTML (the PyTorch
//! indexes), with file lists shaped like the real ones. The policy is the workspace's own;
//! each test changes one file list and expects the difference it makes. One test reads
//! PyPI itself when it is reachable (required in CI).

use std::path::Path;

use crate::support::*;

/// (index, project, files): what the indexes list.
type Listing = Vec<(&'static str, &'static str, Vec<String>)>;

/// What the indexes list, agreeing with the policy.
fn listing() -> Listing {
    let many = |name: &str, v: &str, tags: &[&str]| -> Vec<String> {
        tags.iter().map(|t| format!("{name}-{v}-{t}.whl")).collect()
    };
    let both_linux = |name: &str, v: &str, py: &str| {
        many(
            name,
            v,
            &[
                &format!("{py}-manylinux_2_27_x86_64.manylinux_2_28_x86_64"),
                &format!("{py}-manylinux_2_27_aarch64.manylinux_2_28_aarch64"),
            ],
        )
    };
    let cat = |parts: Vec<Vec<String>>| parts.concat();
    vec![
        (
            "pypi",
            "bitsandbytes",
            cat(vec![
                many(
                    "bitsandbytes",
                    "0.50.0",
                    &[
                        "py3-none-manylinux_2_24_x86_64",
                        "py3-none-manylinux_2_24_aarch64",
                        "py3-none-macosx_14_0_arm64",
                        "py3-none-win_amd64",
                    ],
                ),
                many(
                    "bitsandbytes",
                    "0.47.0",
                    &[
                        "py3-none-manylinux_2_24_x86_64",
                        "py3-none-manylinux_2_24_aarch64",
                    ],
                ),
                many(
                    "bitsandbytes",
                    "0.45.5",
                    &["py3-none-manylinux_2_24_x86_64", "py3-none-win_amd64"],
                ),
                many("bitsandbytes", "0.42.0", &["py3-none-any"]),
                vec!["bitsandbytes-0.42.0.tar.gz".into()],
            ]),
        ),
        ("pypi", "flash-attn", vec!["flash_attn-2.8.3.tar.gz".into()]),
        (
            "pypi",
            "deepspeed",
            vec![
                "deepspeed-0.19.8.tar.gz".into(),
                "deepspeed-0.17.5.tar.gz".into(),
            ],
        ),
        (
            "pypi",
            "triton",
            cat(vec![
                both_linux("triton", "3.9.0", "cp312-cp312"),
                many(
                    "triton",
                    "3.4.0",
                    &["cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64"],
                ),
            ]),
        ),
        (
            "pypi",
            "xformers",
            many(
                "xformers",
                "0.0.35",
                &["cp39-abi3-manylinux_2_28_x86_64", "cp39-abi3-win_amd64"],
            ),
        ),
        ("pypi", "vllm", both_linux("vllm", "0.34.0", "cp38-abi3")),
        (
            "pypi",
            "torch",
            cat(vec![
                both_linux("torch", "2.15.0", "cp312-cp312"),
                many("torch", "2.15.0", &["cp312-none-macosx_14_0_arm64"]),
                // A pre-release without a macOS wheel does not count.
                both_linux("torch", "2.16.0rc1", "cp312-cp312"),
            ]),
        ),
        (
            "cu128",
            "torch",
            cat(vec![
                both_linux("torch", "2.11.0+cu128", "cp312-cp312"),
                both_linux("torch", "2.8.0+cu128", "cp312-cp312"),
            ]),
        ),
        (
            "cu130",
            "torch",
            both_linux("torch", "2.12.0+cu130", "cp312-cp312"),
        ),
    ]
}

/// Write the listing: PEP 691 JSON pages for `pypi`, PEP 503 HTML for the others.
/// `yanked` names files to mark yanked.
fn write_indexes(root: &Path, listing: &[(&str, &str, Vec<String>)], yanked: &[&str]) {
    let _ = std::fs::remove_dir_all(root);
    for (index, project, files) in listing {
        let dir = root.join(index).join(project);
        std::fs::create_dir_all(&dir).unwrap();
        if *index == "pypi" {
            let files: Vec<serde_json::Value> = files
                .iter()
                .map(|f| {
                    let mut v = serde_json::json!({
                        "filename": f,
                        "url": format!("../../files/{f}"),
                        "hashes": {},
                    });
                    if yanked.contains(&f.as_str()) {
                        v["yanked"] = "withdrawn".into();
                    }
                    v
                })
                .collect();
            let page = serde_json::json!({
                "meta": {"api-version": "1.1"},
                "name": project,
                "files": files,
            });
            std::fs::write(dir.join("index.json"), page.to_string()).unwrap();
        } else {
            let mut html = format!("<!DOCTYPE html>\n<html><body><h1>Links for {project}</h1>\n");
            for f in files {
                let y = if yanked.contains(&f.as_str()) {
                    " data-yanked=\"\""
                } else {
                    ""
                };
                let href = f.replace('+', "%2B");
                html.push_str(&format!(
                    "<a href=\"/whl/{href}#sha256=00\" data-requires-python=\"&gt;=3.10\"{y}>{f}</a><br/>\n"
                ));
            }
            html.push_str("</body></html>\n");
            std::fs::write(dir.join("index.html"), html).unwrap();
        }
    }
}

/// `policy check` against the three loopback indexes (pypi, cu128, cu130) in `s`.
fn policy_check(s: &Indexes) -> Test {
    Test::new(["policy", "check", "--index"])
        .arg(format!("{}/ix/pypi", s.url))
        .arg("--index")
        .arg(format!("pytorch-cu128={}/ix/cu128", s.url))
        .arg("--index")
        .arg(format!("pytorch-cu130={}/ix/cu130/", s.url))
}

/// Write the listing, run `policy check --json --last 3` on it (with `extra` flags).
fn check(
    s: &Indexes,
    listing: &[(&str, &str, Vec<String>)],
    yanked: &[&str],
    extra: &[&str],
) -> (Ran, serde_json::Value) {
    write_indexes(&s.root.path().join("ix"), listing, yanked);
    let ran = policy_check(s)
        .args(["--json", "--last", "3"])
        .args(extra)
        .run();
    let v = ran.json();
    (ran, v)
}

fn differences(v: &serde_json::Value) -> Vec<String> {
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["differences"].as_array().unwrap().clone())
        .map(|d| d.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn indexes_that_agree_pass_in_both_formats() {
    let s = Indexes::new();
    let (o, v) = check(&s, &listing(), &[], &[]);
    assert_eq!(o.code(), Some(0), "{o:?}");
    assert!(differences(&v).is_empty(), "{v}");
    let checks = v["checks"].as_array().unwrap();
    let by = |subject: &str| {
        checks
            .iter()
            .find(|c| c["subject"] == subject)
            .unwrap_or_else(|| panic!("no {subject}: {v}"))
    };
    assert_eq!(by("triton >=3.5")["format"], "json");
    assert_eq!(by("torch <2.12 on pytorch-cu128")["format"], "html");
    let cu128 = by("torch <2.12 on pytorch-cu128")["releases"]
        .as_array()
        .unwrap();
    assert_eq!(cu128[0]["version"], "2.11.0+cu128");
    assert_eq!(
        cu128[0]["wheels"]["linux-aarch64-cuda"],
        "torch-2.11.0+cu128-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl"
    );
    assert!(cu128[0]["wheels"]["macos-arm64-mps"].is_null());
    // The pre-release is not one of torch's releases on the default index.
    let pypi_torch = by("torch on the default index")["releases"]
        .as_array()
        .unwrap();
    assert_eq!(pypi_torch.len(), 1, "{v}");
    assert_eq!(pypi_torch[0]["version"], "2.15.0");
    // Every rule with a wheels fact is checked.
    for subject in [
        "bitsandbytes <0.43",
        "flash-attn",
        "deepspeed <0.18.7",
        "xformers",
        "vllm",
    ] {
        assert_eq!(by(subject)["status"], "ok", "{subject}: {v}");
    }
}

/// Each change to the file lists, and the one line it must produce.
#[test]
fn a_removed_wheel_a_new_platform_and_a_yanked_file_are_differences() {
    let s = Indexes::new();
    let edit = |project: &str, f: &dyn Fn(&mut Vec<String>)| {
        let mut l = listing();
        for (_, p, files) in l.iter_mut() {
            if *p == project {
                f(files);
            }
        }
        l
    };
    let cases: Vec<(&str, Listing, Vec<&str>, &str)> = vec![
        (
            "wheel removed",
            edit("triton", &|files| {
                files.retain(|f| !(f.contains("3.9.0") && f.contains("aarch64")))
            }),
            vec![],
            "triton 3.9.0: no linux-aarch64-cuda wheel at glibc 2.28 — policy says yes",
        ),
        (
            "new platform tag",
            edit("xformers", &|files| {
                files.push("xformers-0.0.35-cp39-abi3-manylinux_2_28_aarch64.whl".into())
            }),
            vec![],
            "xformers 0.0.35: a linux-aarch64-cuda wheel (xformers-0.0.35-cp39-abi3-manylinux_2_28_aarch64.whl) — policy says none",
        ),
        (
            "yanked file (PEP 691)",
            listing(),
            vec!["bitsandbytes-0.50.0-py3-none-macosx_14_0_arm64.whl"],
            "bitsandbytes 0.50.0: no macos-arm64-mps wheel at macOS 14.0 — policy says yes",
        ),
        (
            "yanked file (PEP 503)",
            listing(),
            vec!["torch-2.12.0+cu130-cp312-cp312-manylinux_2_27_x86_64.manylinux_2_28_x86_64.whl"],
            "torch 2.12.0+cu130: no linux-x86_64-cuda wheel at glibc 2.28 — policy says yes",
        ),
        (
            "a wheel above the glibc floor",
            edit("vllm", &|files| {
                for f in files.iter_mut() {
                    *f = f.replace(
                        "manylinux_2_27_aarch64.manylinux_2_28_aarch64",
                        "manylinux_2_35_aarch64",
                    );
                }
            }),
            vec![],
            "vllm 0.34.0: no linux-aarch64-cuda wheel at glibc 2.28 — policy says yes",
        ),
        (
            "a wheel above the macOS floor",
            edit("torch", &|files| {
                for f in files.iter_mut() {
                    *f = f.replace("macosx_14_0", "macosx_15_0");
                }
            }),
            vec![],
            "torch 2.15.0: no macos-arm64-mps wheel at macOS 14.0 — policy says yes",
        ),
    ];
    for (what, l, yanked, want) in cases {
        let (o, v) = check(&s, &l, &yanked, &[]);
        assert_eq!(o.code(), Some(1), "{what}: {o:?}");
        assert_eq!(differences(&v), [want.to_string()], "{what}: {v}");
        o.err_has("1 difference between the policy and the indexes");
    }

    // The text report names the claim and its difference under it.
    write_indexes(
        &s.root.path().join("ix"),
        &edit("triton", &|f| f.retain(|f| !f.contains("3.4.0"))),
        &[],
    );
    policy_check(&s)
        .expect(1)
        .out_has("DIFFERS  triton <3.5")
        .out_has("triton <3.5: no release in <3.5 on the index");
}

/// An index that does not answer is skipped with its reason; a bad --index is exit 2.
#[test]
fn unreachable_indexes_are_skipped_and_bad_flags_refused() {
    let s = Indexes::new();
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let (o, v) = check(
        &s,
        &listing(),
        &[],
        &[
            "--index",
            &format!("pytorch-cu130=http://127.0.0.1:{closed}/cu130"),
        ],
    );
    assert_eq!(o.code(), Some(0), "{o:?}");
    let c = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["index"] == "pytorch-cu130")
        .unwrap();
    assert_eq!(c["status"], "unreachable", "{v}");
    assert!(c["reason"].as_str().unwrap().contains("curl"), "{v}");
    assert_eq!(v["unreachable"], 1);

    // Nothing answers: exit 3.
    Test::new(["policy", "check", "--index"])
        .arg(format!("http://127.0.0.1:{closed}/simple"))
        .arg("--index")
        .arg(format!("pytorch-cu128=http://127.0.0.1:{closed}/a"))
        .arg("--index")
        .arg(format!("pytorch-cu130=http://127.0.0.1:{closed}/b"))
        .expect(3)
        .err_has("no index answered");

    for (flag, needle) in [
        (
            "pytorch-cu999=http://127.0.0.1:1/x",
            "is not one of the policy's indexes",
        ),
        ("127.0.0.1/simple", "is not an http(s) URL"),
    ] {
        Test::new(["policy", "check", "--index", flag])
            .expect(2)
            .one_line_error(needle)
            .err_has("--index");
    }
}

/// PyPI itself, for two packages' rules: what the policy says of triton and bitsandbytes
/// must hold there today.
#[test]
fn pypi_agrees_with_the_policy_for_triton_and_bitsandbytes() {
    let probe = run(std::process::Command::new("curl")
        .args([
            "--silent",
            "--max-time",
            "20",
            "--output",
            "/dev/null",
            "--write-out",
            "%{http_code}",
        ])
        .arg(format!("https://{}.{}/simple/triton/", "pypi", "org")));
    if !text(&probe.stdout).starts_with('2') {
        skip_or_fail(
            "pypi",
            "PyPI's simple index does not answer from this machine",
        );
        return;
    }
    // A policy with only those two packages' rules (torch is checked too; not judged here).
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates/platforms.toml");
    let full = std::fs::read_to_string(path).unwrap();
    let mut doc: toml_edit::DocumentMut = full.parse().unwrap();
    let packages = doc["packages"].as_array_of_tables_mut().unwrap();
    packages.retain(|t| {
        matches!(
            t.get("name").and_then(|n| n.as_str()),
            Some("triton" | "bitsandbytes")
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, doc.to_string()).unwrap();
    let v = Test::new(["policy", "check", "--json"])
        .policy(&file)
        .stream("PyPI's releases today")
        .run()
        .json();
    let checks: Vec<&serde_json::Value> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["package"] != "torch")
        .collect();
    assert_eq!(checks.len(), 6, "{v}");
    for c in checks {
        assert_eq!(c["status"], "ok", "{c}");
        assert_eq!(c["format"], "json", "PyPI answers PEP 691: {c}");
        assert!(!c["releases"].as_array().unwrap().is_empty(), "{c}");
    }
}

/// A wheel named and tagged like torch's whose `torch` answers as torch does without a GPU:
/// `torch.version.cuda` and `torch._C._cuda_getArchFlags()` (test data; the check installs
/// it with uv and asks the interpreter, as it does the real wheel).
#[cfg(target_arch = "x86_64")]
fn torch_init(version: &str, cuda: &str, flags: &str) -> String {
    format!(
        "__version__ = {version:?}\n\nclass version:\n    cuda = {cuda:?}\n\n\nclass _C:\n    @staticmethod\n    def _cuda_getArchFlags():\n        return {flags:?}\n"
    )
}

/// `policy check --torch-wheels`: the newest torch of each fact's range on the index for its
/// CUDA, installed for real by uv and asked; agreeing facts pass, a differing one is named
/// with both lists (exit 1), and what cannot be checked here says why.
#[cfg(target_arch = "x86_64")]
#[test]
fn torch_wheels_hold_the_gpu_code_facts_against_the_wheels() {
    let (Some(_), Some(py)) = (find_uv(), python("3.12")) else {
        return;
    };
    let ix = Indexes::new();
    let tag = "py3-none-manylinux_2_28_x86_64";
    let sm128 = "sm_70 sm_75 sm_80 sm_86 sm_90 sm_100 sm_120";
    // cu128: an older release, the newest one (what is checked), a pre-release, and an
    // aarch64 wheel that does not install here.
    for (v, flags) in [
        ("2.8.0+cu128", sm128),
        ("2.10.0+cu128", sm128),
        ("2.11.0rc1+cu128", "sm_90"),
    ] {
        ix.add_with("cu128", "torch", v, tag, &torch_init(v, "12.8", flags));
    }
    let arm = "py3-none-manylinux_2_28_aarch64";
    ix.add_with(
        "cu128",
        "torch",
        "2.10.1+cu128",
        arm,
        &torch_init("2.10.1+cu128", "12.8", "sm_90"),
    );
    // cu130: the newest release carries PTX the policy's fact does not list.
    let wrong = "sm_75 sm_80 sm_86 sm_90 sm_100 sm_120 compute_120";
    ix.add_with(
        "cu130",
        "torch",
        "2.13.0+cu130",
        tag,
        &torch_init("2.13.0+cu130", "13.0", wrong),
    );
    let path = format!(
        "{}:{}",
        py.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let ran = Test::from(xtask())
        .args(["policy", "check", "--torch-wheels", "--json"])
        .arg("--index")
        .arg(format!("pytorch-cu128={}", ix.index_url("cu128")))
        .arg("--index")
        .arg(format!("pytorch-cu130={}", ix.index_url("cu130")))
        .env("PATH", &path)
        .env("UV_PYTHON_DOWNLOADS", "never")
        .env("UV_CACHE_DIR", ix.root.path().join("uv-cache"))
        .expect(1);
    ran.err_has("policy check --torch-wheels: 1 [[torch.builds]] fact(s) differ from the wheels");
    let v: serde_json::Value = serde_json::from_str(&ran.stdout()).unwrap();
    let rows = v["torch_builds"].as_array().unwrap();
    let row = |fact: &str| {
        rows.iter()
            .find(|r| r["fact"] == fact)
            .unwrap_or_else(|| panic!("no row for {fact}: {v:#}"))
    };
    let ok = row("torch >=2.8, CUDA 12.8, x86_64");
    assert_eq!(ok["status"], "ok", "{ok:#}");
    assert_eq!(ok["release"], "2.10.0+cu128");
    assert_eq!(ok["reported"], sm128);
    let bad = row("torch >=2.11, CUDA 13.0, x86_64");
    assert_eq!(bad["status"], "differs", "{bad:#}");
    assert_eq!(bad["release"], "2.13.0+cu130");
    let why = bad["reason"].as_str().unwrap();
    assert!(
        why.contains("compute_120") && why.contains("the policy says"),
        "{why}"
    );
    // No release of the 2.7 range on the loopback cu128; no index for CUDA 12.6; aarch64.
    let none = row("torch >=2.7,<2.8, CUDA 12.8, x86_64");
    assert_eq!(none["status"], "not-checked");
    assert!(
        none["reason"]
            .as_str()
            .unwrap()
            .contains("has no Linux x86_64 wheel")
    );
    let no_index = row("torch >=2.6, CUDA 12.6, x86_64");
    assert!(
        no_index["reason"]
            .as_str()
            .unwrap()
            .contains("no index in the policy serves CUDA 12.6")
    );
    let arm_row = row("torch >=2.9, CUDA 12.8, aarch64");
    assert!(
        arm_row["reason"]
            .as_str()
            .unwrap()
            .contains("needs a Linux aarch64 host")
    );
    assert_eq!(v["checked"], 1);
    assert_eq!(v["differences"], 1);
}
