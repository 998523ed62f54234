//! NVIDIA GPU architectures: a GPU's compute capability, the kernels a CUDA build carries
//! (machine code, SASS, per `sm_XY`; PTX per `compute_XY`), and whether a build runs on
//! a GPU. The rules are CUDA's:
//! - SASS for `sm_X.y` runs on GPUs of the same major `X` with minor ≥ `y`;
//! - `sm_X.ya` (architecture-specific) runs on `X.y` only;
//! - `sm_X.yf` (family-specific, CUDA 12.9+) runs on `X.z`, z ≥ y;
//! - PTX for `compute_X.y` is compiled by the driver for any GPU ≥ `X.y`;
//! - nothing else runs: the first kernel fails with "no kernel image is available".

use std::fmt;

use serde::Serialize;

/// A compute capability, `major.minor` (`9.0`; `sm_90`; `12.1`; `sm_121`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Cc {
    pub major: u32,
    pub minor: u32,
}

impl Cc {
    /// `9.0`, `12.1`, `sm_90`, `compute_120`, `90` (the last digit is the minor).
    pub fn parse(text: &str) -> Option<Cc> {
        let t = text.trim();
        if let Some((a, b)) = t.split_once('.') {
            return Some(Cc {
                major: digits(a)?,
                minor: digits(b).filter(|m| *m < 10)?,
            });
        }
        let t = t
            .strip_prefix("sm_")
            .or_else(|| t.strip_prefix("compute_"))
            .unwrap_or(t);
        if t.len() < 2 {
            return None;
        }
        let (a, b) = t.split_at(t.len() - 1);
        Some(Cc {
            major: digits(a)?,
            minor: digits(b)?,
        })
    }

    /// `sm_90`.
    pub fn sm(self) -> String {
        format!("sm_{}{}", self.major, self.minor)
    }
}

impl fmt::Display for Cc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

fn digits(s: &str) -> Option<u32> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// How far SASS for one architecture reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reach {
    /// `sm_90`: the same major, minor at least this.
    Plain,
    /// `sm_90a`: this architecture only.
    Specific,
    /// `sm_100f`: the family (same major), minor at least this.
    Family,
}

/// Machine code for one architecture: `sm_90`, `sm_90a`, `sm_100f`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sass {
    pub cc: Cc,
    pub reach: Reach,
}

impl Sass {
    pub fn runs_on(self, gpu: Cc) -> bool {
        match self.reach {
            Reach::Specific => gpu == self.cc,
            Reach::Plain | Reach::Family => {
                gpu.major == self.cc.major && gpu.minor >= self.cc.minor
            }
        }
    }
}

impl fmt::Display for Sass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = match self.reach {
            Reach::Plain => "",
            Reach::Specific => "a",
            Reach::Family => "f",
        };
        write!(f, "{}{suffix}", self.cc.sm())
    }
}

/// The GPU code a CUDA build carries.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchList {
    pub sass: Vec<Sass>,
    pub ptx: Vec<Cc>,
}

/// How a build runs on a GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// Its machine code for this architecture.
    Sass(Sass),
    /// PTX the driver compiles at first use (slow first start, may miss tuned kernels).
    Ptx(Cc),
    /// Nothing: "no kernel image is available for execution on the device".
    No,
}

impl ArchList {
    /// `TORCH_CUDA_ARCH_LIST` as PyTorch's build scripts write it:
    /// `7.0;7.5;8.0;8.6;9.0;10.0;12.0+PTX` (`;` or spaces between, `9.0a` / `10.0f`
    /// for the specific and family variants, `+PTX` adding PTX for that entry).
    pub fn from_torch_list(text: &str) -> Result<ArchList, String> {
        let mut out = ArchList::default();
        for entry in text
            .split([';', ' '])
            .map(str::trim)
            .filter(|e| !e.is_empty())
        {
            let (arch, ptx) = match entry.strip_suffix("+PTX") {
                Some(a) => (a, true),
                None => (entry, false),
            };
            let (num, reach) = match arch.chars().last() {
                Some('a') => (&arch[..arch.len() - 1], Reach::Specific),
                Some('f') => (&arch[..arch.len() - 1], Reach::Family),
                _ => (arch, Reach::Plain),
            };
            let cc = num
                .contains('.')
                .then(|| Cc::parse(num))
                .flatten()
                .ok_or_else(|| {
                    format!("{entry:?} is not an architecture (write X.Y, X.Ya, X.Yf or X.Y+PTX)")
                })?;
            out.sass.push(Sass { cc, reach });
            if ptx {
                out.ptx.push(cc);
            }
        }
        if out.sass.is_empty() {
            return Err("no architecture listed".into());
        }
        out.sass.sort();
        out.sass.dedup();
        out.ptx.sort();
        out.ptx.dedup();
        Ok(out)
    }

    /// What `torch._C._cuda_getArchFlags()` (and `torch.cuda.get_arch_list()`) say:
    /// `sm_70 sm_75 ... sm_120 compute_120`, space- or comma-separated, or a Python list.
    pub fn from_flags(text: &str) -> Result<ArchList, String> {
        let mut out = ArchList::default();
        let cleaned: String = text
            .chars()
            .map(|c| if "[]'\",".contains(c) { ' ' } else { c })
            .collect();
        for word in cleaned.split_whitespace() {
            if let Some(rest) = word.strip_prefix("compute_") {
                let cc = Cc::parse(rest.trim_end_matches(['a', 'f']))
                    .ok_or_else(|| format!("{word:?} is not an architecture flag"))?;
                out.ptx.push(cc);
            } else if let Some(rest) = word.strip_prefix("sm_") {
                let (num, reach) = match rest.chars().last() {
                    Some('a') => (&rest[..rest.len() - 1], Reach::Specific),
                    Some('f') => (&rest[..rest.len() - 1], Reach::Family),
                    _ => (rest, Reach::Plain),
                };
                let cc = Cc::parse(num)
                    .ok_or_else(|| format!("{word:?} is not an architecture flag"))?;
                out.sass.push(Sass { cc, reach });
            } else {
                return Err(format!(
                    "{word:?} is not an architecture flag (sm_XY or compute_XY)"
                ));
            }
        }
        out.sass.sort();
        out.sass.dedup();
        out.ptx.sort();
        out.ptx.dedup();
        Ok(out)
    }

    /// `["sm_80", "sm_90"]`.
    pub fn sm_names(&self) -> Vec<String> {
        self.sass.iter().map(Sass::to_string).collect()
    }

    /// `["compute_120"]`.
    pub fn ptx_names(&self) -> Vec<String> {
        self.ptx
            .iter()
            .map(|c| format!("compute_{}{}", c.major, c.minor))
            .collect()
    }

    /// `sm_80 sm_90 sm_100 sm_120 (+PTX compute_120)`.
    pub fn describe(&self) -> String {
        let mut s = self.sm_names().join(" ");
        if !self.ptx.is_empty() {
            s.push_str(&format!(" +PTX {}", self.ptx_names().join(" ")));
        }
        s
    }

    /// Whether (and how) this build runs on a GPU: its own machine code first, else PTX
    /// the driver can compile for it.
    pub fn runs(&self, gpu: Cc) -> Runs {
        if let Some(s) = self
            .sass
            .iter()
            .filter(|s| s.runs_on(gpu))
            .max_by_key(|s| (s.cc, s.reach == Reach::Specific))
        {
            return Runs::Sass(*s);
        }
        match self.ptx.iter().filter(|p| **p <= gpu).max() {
            Some(p) => Runs::Ptx(*p),
            None => Runs::No,
        }
    }
}

/// One GPU the policy knows by name (`[[gpus]]`).
#[derive(Clone, Debug, Serialize)]
pub struct Gpu {
    pub name: String,
    #[serde(serialize_with = "as_display")]
    pub cc: Cc,
    /// Other names users and nvidia-smi give it (`Jetson Thor`, `DGX Spark`).
    pub aliases: Vec<String>,
    /// The CPU architectures of the machines it comes in (empty: any).
    pub hosts: Vec<String>,
    /// Set where the common builds do not run on it whatever their kernels (Jetson Orin's
    /// L4T driver runs only JetPack's torch): why, and what to use.
    pub only: Option<String>,
}

fn as_display<S: serde::Serializer, T: fmt::Display>(v: &T, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(v)
}

impl Gpu {
    /// Whether a name a user or nvidia-smi gives is this GPU: case, spaces, `-` and `_`
    /// do not matter (`rtx5090` is `RTX 5090`).
    pub fn is_named(&self, name: &str) -> bool {
        let want = squash(name);
        std::iter::once(&self.name)
            .chain(&self.aliases)
            .any(|n| squash(n) == want)
    }

    /// Whether this GPU comes in machines of this CPU architecture.
    pub fn on_host(&self, arch: &str) -> bool {
        self.hosts.is_empty() || self.hosts.iter().any(|h| h == arch)
    }
}

/// Lower case, without spaces, `-` and `_`.
pub fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '-' | '_'))
        .flat_map(char::to_lowercase)
        .collect()
}

/// A GPU a user asks about (`--gpu H100`, `--gpu sm_110`) or a machine has: its name and
/// compute capability, and the policy's entry when it has one.
#[derive(Clone, Debug, Serialize)]
pub struct Asked {
    pub name: String,
    #[serde(serialize_with = "as_display")]
    pub cc: Cc,
    #[serde(skip)]
    pub only: Option<String>,
}

impl Asked {
    pub fn of(g: &Gpu) -> Asked {
        Asked {
            name: g.name.clone(),
            cc: g.cc,
            only: g.only.clone(),
        }
    }

    /// `GH200 (9.0)`.
    pub fn label(&self) -> String {
        format!("{} ({})", self.name, self.cc)
    }
}

/// A build's verdict on one GPU, said in one phrase: `sm_90`, `PTX compute_120 (JIT)`,
/// or why not.
pub fn verdict(list: &ArchList, gpu: &Asked) -> (bool, String) {
    if let Some(why) = &gpu.only {
        return (false, why.clone());
    }
    match list.runs(gpu.cc) {
        Runs::Sass(s) => (true, s.to_string()),
        Runs::Ptx(p) => (
            true,
            format!(
                "PTX compute_{}{} only (compiled by the driver at first use)",
                p.major, p.minor
            ),
        ),
        Runs::No => (false, format!("no kernels for {}", gpu.cc.sm())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cc(s: &str) -> Cc {
        Cc::parse(s).unwrap()
    }

    #[test]
    fn capabilities_read_every_way_they_are_written() {
        assert_eq!(cc("9.0"), Cc { major: 9, minor: 0 });
        assert_eq!(cc("sm_90"), cc("9.0"));
        assert_eq!(cc("sm_121"), cc("12.1"));
        assert_eq!(cc("compute_110"), cc("11.0"));
        assert_eq!(cc("100"), cc("10.0"));
        assert_eq!(cc("12.1").sm(), "sm_121");
        for bad in ["", "9", "x.0", "9.", "9.10", "sm_", "sm_9x", "1.2.3"] {
            assert_eq!(Cc::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_torch_list_and_its_flags_are_the_same_build() {
        // PyTorch's x86_64 CUDA 12.8 list, and what that build's
        // torch._C._cuda_getArchFlags() prints.
        let list = ArchList::from_torch_list("7.0;7.5;8.0;8.6;9.0;10.0;12.0").unwrap();
        let flags = ArchList::from_flags("sm_70 sm_75 sm_80 sm_86 sm_90 sm_100 sm_120").unwrap();
        assert_eq!(list, flags);
        assert!(list.ptx.is_empty());
        let ptx = ArchList::from_torch_list("7.5;8.0;8.6;9.0;10.0;12.0+PTX").unwrap();
        assert_eq!(ptx.ptx_names(), ["compute_120"]);
        assert_eq!(
            ptx,
            ArchList::from_flags(
                "['sm_75', 'sm_80', 'sm_86', 'sm_90', 'sm_100', 'sm_120', 'compute_120']"
            )
            .unwrap()
        );
        let variants = ArchList::from_torch_list("8.0 9.0a 10.0f").unwrap();
        assert_eq!(variants.sm_names(), ["sm_80", "sm_90a", "sm_100f"]);
        assert!(ArchList::from_torch_list("Ampere").is_err());
        assert!(ArchList::from_torch_list("").is_err());
        assert!(ArchList::from_flags("sm_80 gfx90a").is_err());
    }

    #[test]
    fn machine_code_runs_upward_within_a_major_and_ptx_runs_upward() {
        // The aarch64 CUDA 12.8 builds.
        let list = ArchList::from_torch_list("8.0;9.0;10.0;12.0").unwrap();
        let runs = |c: &str| list.runs(cc(c));
        assert_eq!(
            runs("9.0"),
            Runs::Sass(Sass {
                cc: cc("9.0"),
                reach: Reach::Plain
            })
        );
        assert!(matches!(runs("8.7"), Runs::Sass(s) if s.cc == cc("8.0")));
        assert!(matches!(runs("10.3"), Runs::Sass(s) if s.cc == cc("10.0")));
        assert!(matches!(runs("12.1"), Runs::Sass(s) if s.cc == cc("12.0")));
        assert_eq!(runs("11.0"), Runs::No, "Thor");
        assert_eq!(runs("7.5"), Runs::No, "below every entry");
        // PTX reaches any later GPU, machine code never crosses a major.
        let ptx = ArchList::from_torch_list("7.5;8.0;9.0+PTX").unwrap();
        assert_eq!(ptx.runs(cc("10.0")), Runs::Ptx(cc("9.0")));
        assert_eq!(ptx.runs(cc("7.0")), Runs::No);
        // Architecture-specific code runs on its own architecture only.
        let a = ArchList::from_torch_list("9.0a").unwrap();
        assert!(matches!(a.runs(cc("9.0")), Runs::Sass(_)));
        let f = ArchList::from_torch_list("10.0f").unwrap();
        assert!(matches!(f.runs(cc("10.3")), Runs::Sass(_)));
        assert_eq!(f.runs(cc("11.0")), Runs::No);
        let a10 = ArchList::from_torch_list("10.0a").unwrap();
        assert_eq!(a10.runs(cc("10.3")), Runs::No);
    }

    #[test]
    fn names_match_without_case_or_spacing() {
        let g = Gpu {
            name: "RTX 5090".into(),
            cc: cc("12.0"),
            aliases: vec!["GeForce RTX 5090".into()],
            hosts: vec![],
            only: None,
        };
        assert!(g.is_named("rtx5090"));
        assert!(g.is_named("GeForce-RTX_5090"));
        assert!(!g.is_named("RTX 509"));
        assert!(g.on_host("aarch64"));
    }
}
