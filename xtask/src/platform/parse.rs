//! Pure parsers over the outputs the probe layer collects. Malformed input becomes a
//! warning string, never a panic.

use super::{Apple, Gpu};

/// Parse `nvidia-smi --query-gpu=index,name,uuid,driver_version,memory.total,compute_cap
/// --format=csv,noheader`. Bad lines are skipped with a warning each.
pub fn nvidia_smi_csv(text: &str) -> (Vec<Gpu>, Vec<String>) {
    let mut gpus = Vec::new();
    let mut warnings = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        if fields.len() < 6 {
            warnings.push(format!(
                "nvidia-smi line {}: expected 6 comma-separated fields, got {}: {line:?}",
                n + 1,
                fields.len()
            ));
            continue;
        }
        // A name may itself hold commas: it is everything between index and the last four.
        let k = fields.len();
        let Ok(index) = fields[0].parse::<u32>() else {
            warnings.push(format!(
                "nvidia-smi line {}: GPU index {:?} is not a number",
                n + 1,
                fields[0]
            ));
            continue;
        };
        let name = fields[1..k - 4].join(",");
        let memory_mib = match na(fields[k - 2]) {
            None => None,
            Some(m) => match m.trim_end_matches("MiB").trim().parse::<u64>() {
                Ok(v) => Some(v),
                Err(_) => {
                    warnings.push(format!(
                        "nvidia-smi line {}: memory {m:?} is not a MiB figure",
                        n + 1
                    ));
                    None
                }
            },
        };
        gpus.push(Gpu {
            index,
            vendor: "nvidia".into(),
            name,
            uuid: na(fields[k - 4]).map(str::to_string),
            driver_version: na(fields[k - 3]).map(str::to_string),
            memory_mib,
            compute_capability: na(fields[k - 1]).map(str::to_string),
            ..Gpu::default()
        });
    }
    (gpus, warnings)
}

/// Add serials and PCI bus ids from `nvidia-smi --query-gpu=index,serial,pci.bus_id
/// --format=csv,noheader` to the GPUs of the same index.
pub fn nvidia_smi_identity(text: &str, gpus: &mut [Gpu]) {
    for line in text.lines() {
        let fields: Vec<&str> = line.split(',').map(str::trim).collect();
        let [index, serial, bus] = fields[..] else {
            continue;
        };
        let Ok(index) = index.parse::<u32>() else {
            continue;
        };
        if let Some(g) = gpus.iter_mut().find(|g| g.index == index) {
            g.serial = na(serial).map(str::to_string);
            g.pci_bus_id = na(bus).map(str::to_string);
        }
    }
}

/// nvidia-smi writes `[N/A]` or `[Not Supported]` for fields it cannot read.
fn na(field: &str) -> Option<&str> {
    if field.is_empty() || field.starts_with('[') {
        None
    } else {
        Some(field)
    }
}

/// The "CUDA Version: 12.8" in nvidia-smi's default banner.
pub fn nvidia_smi_banner_cuda(text: &str) -> Option<String> {
    let rest = &text[text.find("CUDA Version:")? + "CUDA Version:".len()..];
    let v: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

/// cuDriverGetVersion's integer (12080) as "12.8".
pub fn cuda_version_from_int(v: i32) -> String {
    format!("{}.{}", v / 1000, (v % 1000) / 10)
}

/// Parse `system_profiler SPDisplaysDataType -json`: the first Apple GPU's chip, cores
/// and Metal family.
pub fn system_profiler_displays(text: &str) -> (Option<(Apple, Gpu)>, Vec<String>) {
    let value: serde_json::Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return (
                None,
                vec![format!("system_profiler output is not valid JSON: {e}")],
            );
        }
    };
    let Some(items) = value.get("SPDisplaysDataType").and_then(|v| v.as_array()) else {
        return (
            None,
            vec!["system_profiler output has no SPDisplaysDataType list".into()],
        );
    };
    let mut warnings = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let s = |k: &str| item.get(k).and_then(|v| v.as_str()).map(str::to_string);
        let model = s("sppci_model").or_else(|| s("_name"));
        let vendor = s("spdisplays_vendor").unwrap_or_default();
        let is_apple = vendor.to_ascii_lowercase().contains("apple")
            || model.as_deref().is_some_and(|m| m.starts_with("Apple"));
        if !is_apple {
            continue;
        }
        let metal = s("spdisplays_mtlgpufamilysupport")
            .or_else(|| s("spdisplays_metal"))
            .map(|m| metal_family(&m));
        let cores = match s("sppci_cores") {
            Some(c) => match c.parse::<u32>() {
                Ok(v) => Some(v),
                Err(_) => {
                    warnings.push(format!(
                        "system_profiler: GPU core count {c:?} is not a number"
                    ));
                    None
                }
            },
            None => None,
        };
        let gpu = Gpu {
            index: i as u32,
            vendor: "apple".into(),
            name: model.clone().unwrap_or_else(|| "Apple GPU".into()),
            metal: metal.clone(),
            cores,
            ..Gpu::default()
        };
        let apple = Apple {
            chip: model,
            metal,
            memory_bytes: None,
        };
        return (Some((apple, gpu)), warnings);
    }
    warnings.push("system_profiler lists no Apple GPU".into());
    (None, warnings)
}

/// "spdisplays_metal3" → "Metal 3"; unknown spellings pass through.
fn metal_family(raw: &str) -> String {
    match raw.strip_prefix("spdisplays_metal") {
        Some(n) if !n.is_empty() => format!("Metal {n}"),
        Some(_) => "Metal".into(),
        None => raw.to_string(),
    }
}

/// `sysctl -n hw.memsize` → bytes.
pub fn memsize(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// PRETTY_NAME from /etc/os-release.
pub fn os_release_pretty(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        l.strip_prefix("PRETTY_NAME=")
            .map(|v| v.trim().trim_matches('"').to_string())
    })
}

/// The first version-looking word of a `--version` output: "uv 0.13.9 (hash date)",
/// "Python 3.11.7", "Docker version 28.2.2, build e6534b4",
/// "github.com/docker/buildx v0.11.2 9872040", nvcc's "release 12.8, V12.8.93".
pub fn version_in(text: &str) -> Option<String> {
    for line in text.lines() {
        // nvcc: prefer the full "V12.8.93".
        if let Some(rest) = line.split(", V").nth(1) {
            let v = leading_version(rest);
            if v.is_some() {
                return v;
            }
        }
    }
    text.split(|c: char| c.is_whitespace() || c == ',')
        .find_map(|w| leading_version(w.strip_prefix('v').unwrap_or(w)))
}

fn leading_version(word: &str) -> Option<String> {
    let v: String = word
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '+' || *c == '-')
        .collect();
    let mut parts = v.split('.');
    let first_numeric = parts
        .next()
        .is_some_and(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()));
    (first_numeric && v.contains('.')).then_some(v)
}

/// The two lines a Python prints for `sys.version.split()[0]` and `sys.executable`.
/// Python 2 and anything that is not a Python 3 answer is `None`.
pub fn python_identity(text: &str) -> Option<(String, std::path::PathBuf)> {
    let mut lines = text.lines().map(str::trim);
    let version = lines.next().filter(|v| v.starts_with("3."))?.to_string();
    let exe = lines.next().filter(|e| !e.is_empty())?;
    Some((version, exe.into()))
}

/// Major version of a dotted version string.
pub fn major(version: &str) -> Option<u32> {
    crate::xy::Xy::parse(version).map(|v| v.major)
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_str!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/fixtures/platform/",
                $name
            ))
        };
    }

    #[test]
    fn single_h100() {
        let (gpus, w) = nvidia_smi_csv(fixture!("nvidia-smi-h100.csv"));
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(gpus.len(), 1);
        let g = &gpus[0];
        assert_eq!(g.name, "NVIDIA H100 80GB HBM3");
        assert_eq!(g.memory_mib, Some(81559));
        assert_eq!(g.compute_capability.as_deref(), Some("9.0"));
        assert_eq!(g.driver_version.as_deref(), Some("570.124.06"));
        assert!(g.uuid.as_deref().unwrap().starts_with("GPU-5f1c"));
    }

    #[test]
    fn gh200_on_aarch64() {
        let (gpus, w) = nvidia_smi_csv(fixture!("nvidia-smi-gh200.csv"));
        assert!(w.is_empty());
        assert_eq!(gpus[0].name, "NVIDIA GH200 480GB");
        assert_eq!(gpus[0].memory_mib, Some(97871));
    }

    #[test]
    fn eight_gpu_node() {
        let (gpus, w) = nvidia_smi_csv(fixture!("nvidia-smi-8gpu.csv"));
        assert!(w.is_empty());
        assert_eq!(gpus.len(), 8);
        assert_eq!(
            gpus.iter().map(|g| g.index).collect::<Vec<_>>(),
            (0..8).collect::<Vec<_>>()
        );
        assert!(
            gpus.iter()
                .all(|g| g.compute_capability.as_deref() == Some("9.0"))
        );
    }

    #[test]
    fn serials_and_bus_ids_join_by_index() {
        let (mut gpus, _) = nvidia_smi_csv(fixture!("nvidia-smi-8gpu.csv"));
        // The shape nvidia-smi prints for this query; a card without a serial says [N/A].
        let text = "1, 1652922011111, 00000000:2A:00.0\n0, [N/A], 00000000:19:00.0\nbad line\n";
        nvidia_smi_identity(text, &mut gpus);
        assert_eq!(gpus[0].serial, None);
        assert_eq!(gpus[0].pci_bus_id.as_deref(), Some("00000000:19:00.0"));
        assert_eq!(gpus[1].serial.as_deref(), Some("1652922011111"));
        assert_eq!(gpus[2].pci_bus_id, None);
    }

    #[test]
    fn malformed_nvidia_smi_warns_and_keeps_good_lines() {
        let (gpus, w) = nvidia_smi_csv(fixture!("nvidia-smi-malformed.csv"));
        assert_eq!(gpus.len(), 2, "{gpus:?}");
        assert_eq!(gpus[0].name, "NVIDIA A100-SXM4-40GB");
        // [N/A] fields are absent, not garbage.
        assert_eq!(gpus[1].index, 2);
        assert_eq!(gpus[1].memory_mib, None);
        assert_eq!(gpus[1].compute_capability, None);
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(
            w[0].contains("line 2") && w[0].contains("expected 6"),
            "{w:?}"
        );
        assert!(
            w[1].contains("line 3") && w[1].contains("not a number"),
            "{w:?}"
        );
        // Total garbage and empty output never panic.
        for junk in [
            "",
            "\n\n",
            ",,,,,,,,,,",
            "No devices were found",
            "\u{0}\u{ff}",
        ] {
            let (g, _) = nvidia_smi_csv(junk);
            assert!(g.is_empty(), "{junk:?}");
        }
        let (g, w) = nvidia_smi_csv(fixture!("nvidia-smi-no-devices.txt"));
        assert!(g.is_empty());
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn names_with_commas() {
        let (g, w) = nvidia_smi_csv("0, Weird, GPU, GPU-1, 550.1, 1024 MiB, 8.6\n");
        assert!(w.is_empty());
        assert_eq!(g[0].name, "Weird,GPU");
        assert_eq!(g[0].memory_mib, Some(1024));
    }

    #[test]
    fn cuda_versions() {
        assert_eq!(
            nvidia_smi_banner_cuda(fixture!("nvidia-smi-banner-h100.txt")).as_deref(),
            Some("12.8")
        );
        assert_eq!(nvidia_smi_banner_cuda("no banner"), None);
        assert_eq!(nvidia_smi_banner_cuda("CUDA Version: "), None);
        assert_eq!(cuda_version_from_int(12080), "12.8");
        assert_eq!(cuda_version_from_int(13000), "13.0");
    }

    #[test]
    fn apple_m2_and_m3() {
        let (found, w) = system_profiler_displays(fixture!("system_profiler-m2.json"));
        assert!(w.is_empty(), "{w:?}");
        let (apple, gpu) = found.unwrap();
        assert_eq!(apple.chip.as_deref(), Some("Apple M2"));
        assert_eq!(apple.metal.as_deref(), Some("Metal 3"));
        assert_eq!(gpu.cores, Some(10));
        assert_eq!(gpu.vendor, "apple");

        let (found, _) = system_profiler_displays(fixture!("system_profiler-m3-max.json"));
        let (apple, gpu) = found.unwrap();
        assert_eq!(apple.chip.as_deref(), Some("Apple M3 Max"));
        assert_eq!(gpu.cores, Some(40));
        assert_eq!(memsize("68719476736\n"), Some(64 << 30));
        assert_eq!(memsize("sysctl: unknown oid"), None);
    }

    #[test]
    fn malformed_system_profiler_warns() {
        let (found, w) = system_profiler_displays(fixture!("system_profiler-malformed.json"));
        assert!(found.is_none());
        assert!(w[0].contains("not valid JSON"), "{w:?}");
        let (found, w) = system_profiler_displays(r#"{"SPDisplaysDataType": 3}"#);
        assert!(found.is_none() && w[0].contains("no SPDisplaysDataType"));
        let (found, w) = system_profiler_displays(
            r#"{"SPDisplaysDataType": [{"sppci_model": "AMD Radeon Pro 5500M", "spdisplays_vendor": "sppci_vendor_amd"}]}"#,
        );
        assert!(found.is_none() && w[0].contains("no Apple GPU"));
    }

    #[test]
    fn python_identities() {
        let (v, exe) =
            python_identity("3.12.1\n/root/.pyenv/versions/3.12.1/bin/python3\n").unwrap();
        assert_eq!(v, "3.12.1");
        assert_eq!(
            exe,
            std::path::PathBuf::from("/root/.pyenv/versions/3.12.1/bin/python3")
        );
        assert!(python_identity("2.7.18\n/usr/bin/python2\n").is_none());
        assert!(python_identity("3.11.2\n").is_none());
        assert!(python_identity("").is_none());
    }

    #[test]
    fn versions() {
        assert_eq!(
            version_in("uv 0.13.9 (a1b2c3 2026-10-01)").as_deref(),
            Some("0.13.9")
        );
        assert_eq!(version_in("Python 3.11.7\n").as_deref(), Some("3.11.7"));
        assert_eq!(
            version_in("Docker version 28.2.2, build e6534b4").as_deref(),
            Some("28.2.2")
        );
        assert_eq!(
            version_in("github.com/docker/buildx v0.11.2 9872040").as_deref(),
            Some("0.11.2")
        );
        let nvcc = "nvcc: NVIDIA (R) Cuda compiler driver\nCuda compilation tools, release 12.8, V12.8.93\nBuild cuda_12.8.r12.8/compiler.35583870_0\n";
        assert_eq!(version_in(nvcc).as_deref(), Some("12.8.93"));
        assert_eq!(version_in("no digits here"), None);
        assert_eq!(major("20.10.24+dfsg1"), Some(20));
        assert_eq!(
            os_release_pretty(fixture!("os-release-debian12")).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
    }
}
