//! Wheel filenames and tag compatibility for a target: python tag (cpXY, pyX[Y], abi3
//! with its minimum), ABI, and platform (manylinux_X_Y and its legacy aliases against a
//! glibc floor, musllinux never on glibc, macosx_X_Y arm64/universal2 against a macOS
//! floor, any).

use crate::names::{Arch, Os};

/// What a wheel must run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Platform {
    pub os: Os,
    pub arch: Arch,
    /// glibc floor (major, minor) for Linux.
    pub glibc: Option<(u32, u32)>,
    /// macOS floor (major, minor).
    pub macos: Option<(u32, u32)>,
}

impl Platform {
    /// What a policy target's wheels must run on: its OS, architecture and floors.
    pub fn for_target(t: &crate::policy::Target) -> Platform {
        Platform {
            os: t.os(),
            arch: t.arch(),
            glibc: t.glibc.as_deref().and_then(parse_floor),
            macos: t.macos.as_deref().and_then(parse_floor),
        }
    }
}

/// A wheel's name split into its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WheelName {
    pub python: Vec<String>,
    pub abi: Vec<String>,
    pub platform: Vec<String>,
}

/// Parse `{name}-{version}(-{build})?-{python}-{abi}-{platform}.whl`.
pub fn parse_wheel(filename: &str) -> Option<WheelName> {
    let stem = filename.strip_suffix(".whl")?;
    let parts: Vec<&str> = stem.split('-').collect();
    if parts.len() < 5 {
        return None;
    }
    let n = parts.len();
    let split = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
    Some(WheelName {
        python: split(parts[n - 3]),
        abi: split(parts[n - 2]),
        platform: split(parts[n - 1]),
    })
}

/// The file name at the end of a URL or path, percent-decoded.
pub fn filename_of(url: &str) -> String {
    let last = url.rsplit('/').next().unwrap_or(url);
    let last = last.split(['#', '?']).next().unwrap_or(last);
    percent_decode(last)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// How well a wheel fits; higher is better. None when it does not install.
pub fn score(wheel: &WheelName, py: (u32, u32), target: &Platform) -> Option<(u32, u32)> {
    let plat = wheel
        .platform
        .iter()
        .filter_map(|p| platform_score(p, target))
        .max()?;
    let mut best_py = None;
    for interp in &wheel.python {
        for abi in &wheel.abi {
            if let Some(s) = python_score(interp, abi, py) {
                best_py = best_py.max(Some(s));
            }
        }
    }
    Some((best_py?, plat))
}

/// The best-fitting of some wheels (each with its parsed name), as uv would pick.
pub fn best<T, N: std::borrow::Borrow<WheelName>>(
    wheels: impl IntoIterator<Item = (T, N)>,
    py: (u32, u32),
    target: &Platform,
) -> Option<T> {
    let mut best: Option<((u32, u32), T)> = None;
    for (handle, name) in wheels {
        if let Some(s) = score(name.borrow(), py, target)
            && best.as_ref().is_none_or(|(b, _)| s > *b)
        {
            best = Some((s, handle));
        }
    }
    best.map(|(_, h)| h)
}

/// cpXY with abi cpXY (best), abi3 from its minimum, none; then pyXY / pyX.
fn python_score(interp: &str, abi: &str, (major, minor): (u32, u32)) -> Option<u32> {
    if let Some(v) = interp.strip_prefix("cp") {
        let (m, n) = split_version(v)?;
        if m != major {
            return None;
        }
        return match abi {
            a if a == format!("cp{major}{minor}") && n == minor => Some(100),
            "abi3" if n <= minor => Some(90 - (minor - n).min(50)),
            "none" if n == minor => Some(80),
            _ => None,
        };
    }
    if let Some(v) = interp.strip_prefix("py") {
        if abi != "none" {
            return None;
        }
        let (m, n) = split_version(v)?;
        if m != major {
            return None;
        }
        return match v.len() {
            1 => Some(20),                                     // py3
            _ if n <= minor => Some(30 - (minor - n).min(10)), // py3Y, Y <= minor
            _ => None,
        };
    }
    None
}

/// "312" → (3, 12); "3" → (3, 0).
fn split_version(v: &str) -> Option<(u32, u32)> {
    let mut chars = v.chars();
    let major = chars.next()?.to_digit(10)?;
    let rest: String = chars.collect();
    let minor = if rest.is_empty() {
        0
    } else {
        rest.parse().ok()?
    };
    Some((major, minor))
}

fn platform_score(tag: &str, t: &Platform) -> Option<u32> {
    if tag == "any" {
        return Some(1);
    }
    match t.os {
        Os::Linux => {
            let (gmaj, gmin) = t.glibc.unwrap_or((2, 17));
            if Arch::parse(tag_arch(tag)?) != t.arch {
                return None;
            }
            if tag.starts_with("musllinux") {
                return None; // musl wheels never run on a glibc system
            }
            let (maj, min) = if let Some(rest) = tag.strip_prefix("manylinux_") {
                let mut it = rest.splitn(3, '_');
                (it.next()?.parse().ok()?, it.next()?.parse().ok()?)
            } else if tag.starts_with("manylinux1_") {
                (2, 5)
            } else if tag.starts_with("manylinux2010_") {
                (2, 12)
            } else if tag.starts_with("manylinux2014_") {
                (2, 17)
            } else if tag.starts_with("linux_") {
                return Some(2);
            } else {
                return None;
            };
            (maj == gmaj && min <= gmin || maj < gmaj).then_some(10 + min)
        }
        Os::Macos => {
            let rest = tag.strip_prefix("macosx_")?;
            let mut it = rest.splitn(3, '_');
            let maj: u32 = it.next()?.parse().ok()?;
            let min: u32 = it.next()?.parse().ok()?;
            let arch = it.next()?;
            let fits_arch = match arch {
                "arm64" => t.arch == Arch::Aarch64,
                "universal2" => matches!(t.arch, Arch::Aarch64 | Arch::X86_64),
                "x86_64" | "intel" | "universal" => t.arch == Arch::X86_64,
                _ => false,
            };
            let (fmaj, fmin) = t.macos.unwrap_or((11, 0));
            let fits_version = (maj, min) <= (fmaj, fmin) || (maj >= 11 && maj <= fmaj && min == 0);
            (fits_arch && fits_version).then_some(10 + maj + if arch == "arm64" { 1 } else { 0 })
        }
        _ => None,
    }
}

/// The OS floor a wheel needs on a target: the lowest glibc (manylinux) or macOS version
/// among its platform tags that install there. None for `any`, `linux_*` and wheels
/// that do not install on the target.
pub fn needs(wheel: &WheelName, target: &Platform) -> Option<(u32, u32)> {
    wheel
        .platform
        .iter()
        .filter(|p| platform_score(p, target).is_some())
        .filter_map(|p| tag_floor(p))
        .min()
}

/// The glibc or macOS version a platform tag names: `manylinux_2_28_x86_64` → (2, 28),
/// `manylinux2014_aarch64` → (2, 17), `macosx_14_0_arm64` → (14, 0).
fn tag_floor(tag: &str) -> Option<(u32, u32)> {
    let two = |rest: &str| -> Option<(u32, u32)> {
        let mut it = rest.splitn(3, '_');
        Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
    };
    if let Some(rest) = tag.strip_prefix("manylinux_") {
        two(rest)
    } else if tag.starts_with("manylinux1_") {
        Some((2, 5))
    } else if tag.starts_with("manylinux2010_") {
        Some((2, 12))
    } else if tag.starts_with("manylinux2014_") {
        Some((2, 17))
    } else {
        two(tag.strip_prefix("macosx_")?)
    }
}

/// The architecture at the end of a Linux platform tag.
fn tag_arch(tag: &str) -> Option<&str> {
    [
        "x86_64", "aarch64", "i686", "ppc64le", "s390x", "armv7l", "riscv64",
    ]
    .into_iter()
    .find(|arch| tag.ends_with(arch))
}

/// "2.28" → (2, 28).
pub fn parse_floor(v: &str) -> Option<(u32, u32)> {
    crate::xy::Xy::parse(v).map(crate::xy::Xy::pair)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_a_wheel_needs() {
        let linux = Platform {
            os: Os::Linux,
            arch: Arch::Aarch64,
            glibc: Some((2, 28)),
            macos: None,
        };
        let mac = Platform {
            os: Os::Macos,
            arch: Arch::Aarch64,
            glibc: None,
            macos: Some((14, 0)),
        };
        let n = |f: &str, t: &Platform| needs(&parse_wheel(f).unwrap(), t);
        assert_eq!(
            n(
                "t-1-cp312-cp312-manylinux_2_27_aarch64.manylinux_2_28_aarch64.whl",
                &linux
            ),
            Some((2, 27))
        );
        assert_eq!(
            n("b-1-py3-none-manylinux2014_aarch64.whl", &linux),
            Some((2, 17))
        );
        assert_eq!(n("b-1-py3-none-manylinux_2_34_aarch64.whl", &linux), None);
        assert_eq!(n("b-1-py3-none-any.whl", &linux), None);
        assert_eq!(n("b-1-py3-none-macosx_14_0_arm64.whl", &mac), Some((14, 0)));
        assert_eq!(
            n(
                "b-1-cp312-cp312-macosx_11_0_arm64.macosx_10_9_universal2.whl",
                &mac
            ),
            Some((10, 9))
        );
    }

    #[test]
    fn percent_decoding_never_panics() {
        assert_eq!(
            percent_decode("torch-2.8.0%2Bcu126.whl"),
            "torch-2.8.0+cu126.whl"
        );
        for odd in ["%é", "a%", "a%4", "%4é", "%%41", "é%2", "%zz"] {
            let _ = percent_decode(odd);
        }
        assert_eq!(percent_decode("%%41"), "%A");
        assert_eq!(percent_decode("%é"), "%é");
    }

    fn linux(arch: &str) -> Platform {
        Platform {
            os: Os::Linux,
            arch: Arch::parse(arch),
            glibc: Some((2, 28)),
            macos: None,
        }
    }

    fn mac() -> Platform {
        Platform {
            os: Os::Macos,
            arch: Arch::Aarch64,
            glibc: None,
            macos: Some((13, 0)),
        }
    }

    fn fits(file: &str, t: &Platform) -> bool {
        score(&parse_wheel(file).unwrap(), (3, 12), t).is_some()
    }

    #[test]
    fn python_tags() {
        let l = linux("x86_64");
        assert!(fits("a-1-cp312-cp312-manylinux_2_17_x86_64.whl", &l));
        assert!(!fits("a-1-cp311-cp311-manylinux_2_17_x86_64.whl", &l));
        assert!(fits("a-1-cp38-abi3-manylinux_2_17_x86_64.whl", &l));
        assert!(!fits("a-1-cp313-abi3-manylinux_2_17_x86_64.whl", &l));
        assert!(fits("a-1-py3-none-any.whl", &l));
        assert!(fits("a-1-py2.py3-none-any.whl", &l));
        assert!(!fits("a-1-py2-none-any.whl", &l));
        assert!(fits("a-1-cp312-none-any.whl", &l));
        assert!(!fits("a-1-cp312-cp312t-manylinux_2_17_x86_64.whl", &l));
        assert!(!fits(
            "a-1-pp310-pypy310_pp73-manylinux_2_17_x86_64.whl",
            &l
        ));
    }

    #[test]
    fn linux_platforms() {
        let x = linux("x86_64");
        let a = linux("aarch64");
        assert!(fits("a-1-py3-none-manylinux_2_28_x86_64.whl", &x));
        assert!(!fits("a-1-py3-none-manylinux_2_28_x86_64.whl", &a));
        assert!(fits("a-1-py3-none-manylinux_2_24_aarch64.whl", &a));
        assert!(
            !fits("a-1-py3-none-manylinux_2_34_x86_64.whl", &x),
            "above the glibc floor"
        );
        assert!(fits("a-1-cp312-cp312-manylinux1_x86_64.whl", &x));
        assert!(fits("a-1-cp312-cp312-manylinux2010_x86_64.whl", &x));
        assert!(fits("a-1-cp312-cp312-manylinux2014_aarch64.whl", &a));
        assert!(fits(
            "a-1-cp312-cp312-manylinux_2_17_x86_64.manylinux2014_x86_64.whl",
            &x
        ));
        assert!(!fits("a-1-cp312-cp312-musllinux_1_2_x86_64.whl", &x));
        assert!(!fits("a-1-cp312-cp312-win_amd64.whl", &x));
        assert!(!fits("a-1-cp312-cp312-macosx_11_0_arm64.whl", &x));
    }

    #[test]
    fn macos_platforms() {
        let m = mac();
        assert!(fits("a-1-cp312-none-macosx_11_0_arm64.whl", &m));
        assert!(fits("a-1-cp312-cp312-macosx_10_9_universal2.whl", &m));
        assert!(fits("a-1-cp312-cp312-macosx_13_0_arm64.whl", &m));
        assert!(
            !fits("a-1-py3-none-macosx_14_0_arm64.whl", &m),
            "above the macOS floor"
        );
        assert!(!fits("a-1-cp312-cp312-macosx_10_9_x86_64.whl", &m));
        assert!(!fits("a-1-cp312-cp312-manylinux_2_17_aarch64.whl", &m));
    }

    #[test]
    fn best_wheel_prefers_specific_tags() {
        let x = linux("x86_64");
        let s = |f: &str| score(&parse_wheel(f).unwrap(), (3, 12), &x).unwrap();
        assert!(
            s("a-1-cp312-cp312-manylinux_2_17_x86_64.whl")
                > s("a-1-cp38-abi3-manylinux_2_17_x86_64.whl")
        );
        assert!(s("a-1-cp38-abi3-manylinux_2_17_x86_64.whl") > s("a-1-py3-none-any.whl"));
        assert!(
            s("a-1-cp312-cp312-manylinux_2_28_x86_64.whl").1
                > s("a-1-cp312-cp312-manylinux_2_17_x86_64.whl").1
        );
    }

    #[test]
    fn names() {
        assert_eq!(
            filename_of(
                "https://x.invalid/whl/cu126/torch-2.8.0%2Bcu126-cp310-cp310-manylinux_2_28_x86_64.whl#sha256=ab"
            ),
            "torch-2.8.0+cu126-cp310-cp310-manylinux_2_28_x86_64.whl"
        );
        assert!(parse_wheel("foo.tar.gz").is_none());
        assert!(parse_wheel("a-1-py3.whl").is_none());
        let w = parse_wheel("a-1-1build-py2.py3-none-any.whl").unwrap();
        assert_eq!(w.python, ["py2", "py3"]);
        assert_eq!(parse_floor("2.28"), Some((2, 28)));
        assert_eq!(parse_floor("13"), Some((13, 0)));
    }
}
