//! This machine's CPU architecture without starting a process (`uname(2)`, not `uname -m`,
//! whose child would run as the host's own binary under QEMU user mode), and whether this
//! binary runs emulated: an x86_64 build under Rosetta 2 on an Apple Silicon Mac, or a
//! foreign-architecture build under QEMU user mode on Linux.

use serde::Serialize;

use crate::names::{Arch, Os};

/// How this process is emulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EmulationKind {
    /// Apple's x86_64 translator on Apple Silicon (`sysctl.proc_translated` = 1).
    Rosetta,
    /// QEMU's user-mode emulator (binfmt_misc), seen as a kernel of another architecture.
    QemuUser,
}

/// A binary that does not run natively: what it is built for, what the machine is, and
/// what to do about it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Emulation {
    pub kind: EmulationKind,
    /// The architecture this binary executes as.
    pub binary_arch: Arch,
    /// The machine's own CPU.
    pub machine_arch: Arch,
    pub evidence: String,
    pub advice: String,
}

/// The architecture as the OS reports it to this process, and the emulation, if any.
#[derive(Clone, Debug)]
pub struct Machine {
    /// The architecture the target is chosen for: the machine's own on a Mac under
    /// Rosetta (its Python and torch should be native), the emulated one under QEMU (every
    /// program in that root runs as it).
    pub arch: Arch,
    /// What `uname(2)` says, unnormalised (`arm64` on macOS).
    pub raw: String,
    pub emulation: Option<Emulation>,
}

/// Probe: `uname(2)`, then Rosetta's sysctl on macOS or the kernel's own architecture on
/// Linux (`/proc/sys/kernel/arch`, which QEMU passes through unchanged, else the CPU
/// description in `/proc/cpuinfo`).
pub fn detect() -> Machine {
    let raw = uname_machine().unwrap_or_else(|| std::env::consts::ARCH.to_string());
    match Os::host() {
        Os::Macos => judge_macos(&raw, rosetta_translated()),
        Os::Linux => {
            let kernel = std::fs::read_to_string("/proc/sys/kernel/arch")
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty());
            let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
            judge_linux(&raw, kernel.as_deref(), &cpuinfo)
        }
        _ => Machine {
            arch: Arch::parse(&raw),
            raw,
            emulation: None,
        },
    }
}

/// macOS: under Rosetta `uname` says x86_64 on an arm64 machine.
pub fn judge_macos(raw: &str, translated: bool) -> Machine {
    let seen = Arch::parse(raw);
    if !translated {
        return Machine {
            arch: seen,
            raw: raw.to_string(),
            emulation: None,
        };
    }
    Machine {
        arch: Arch::Aarch64,
        raw: raw.to_string(),
        emulation: Some(Emulation {
            kind: EmulationKind::Rosetta,
            binary_arch: seen.clone(),
            machine_arch: Arch::Aarch64,
            evidence: format!("sysctl.proc_translated = 1: this {seen} binary runs under Rosetta 2 on Apple Silicon"),
            advice: "use a native arm64 build (`rustup default stable-aarch64-apple-darwin`, then \
                     `cargo xtask ...`, or an aarch64-apple-darwin `dist` bundle): Python and torch \
                     started from a translated shell are x86_64 too and get no MPS"
                .into(),
        }),
    }
}

/// Linux: the kernel's own architecture against what `uname(2)` told this process.
pub fn judge_linux(raw: &str, kernel_arch: Option<&str>, cpuinfo: &str) -> Machine {
    let seen = Arch::parse(raw);
    let (machine, evidence) = match kernel_arch {
        Some(k) => (Arch::parse(k), format!("/proc/sys/kernel/arch says {k}")),
        None => match cpuinfo_arch(cpuinfo) {
            Some(a) => {
                let e = format!("/proc/cpuinfo describes an {a} CPU");
                (a, e)
            }
            None => (seen.clone(), String::new()),
        },
    };
    let emulation = (machine != seen && !matches!(machine, Arch::Other(_))).then(|| Emulation {
        kind: EmulationKind::QemuUser,
        binary_arch: seen.clone(),
        machine_arch: machine.clone(),
        evidence: format!("{evidence} while this process runs as {seen}: emulated (QEMU user mode)"),
        advice: format!(
            "rates measured here are the emulator's, not the hardware's: run natively on {seen} hardware for real figures"
        ),
    });
    Machine {
        arch: seen,
        raw: raw.to_string(),
        emulation,
    }
}

/// The CPU family `/proc/cpuinfo` describes (x86 has `vendor_id` and `flags`, Arm has
/// `CPU implementer` and `Features`).
pub fn cpuinfo_arch(cpuinfo: &str) -> Option<Arch> {
    let has = |key: &str| {
        cpuinfo
            .lines()
            .any(|l| l.split(':').next().is_some_and(|k| k.trim() == key))
    };
    if has("vendor_id") && has("flags") {
        Some(Arch::X86_64)
    } else if has("CPU implementer") {
        Some(Arch::Aarch64)
    } else {
        None
    }
}

fn uname_machine() -> Option<String> {
    let u = rustix::system::uname();
    let s = u.machine().to_string_lossy().trim().to_string();
    (!s.is_empty()).then_some(s)
}

#[cfg(target_os = "macos")]
fn rosetta_translated() -> bool {
    let mut value: libc::c_int = 0;
    let mut size = std::mem::size_of::<libc::c_int>();
    // SAFETY: a NUL-terminated name and an int-sized buffer with its size; a name the
    // kernel lacks (Intel Macs before Big Sur) returns -1 and leaves the buffer alone.
    let rc = unsafe {
        libc::sysctlbyname(
            c"sysctl.proc_translated".as_ptr(),
            (&mut value as *mut libc::c_int).cast(),
            &mut size,
            std::ptr::null_mut(),
            0,
        )
    };
    rc == 0 && value == 1
}

#[cfg(not(target_os = "macos"))]
fn rosetta_translated() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    const X86_CPUINFO: &str =
        "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme sse2\n";
    const ARM_CPUINFO: &str =
        "processor\t: 0\nBogoMIPS\t: 2000.00\nFeatures\t: fp asimd\nCPU implementer\t: 0x41\n";

    #[test]
    fn native_linux_is_not_emulated() {
        let m = judge_linux("x86_64", Some("x86_64"), X86_CPUINFO);
        assert_eq!(m.arch, Arch::X86_64);
        assert!(m.emulation.is_none());
        let m = judge_linux("aarch64", None, ARM_CPUINFO);
        assert_eq!(m.arch, Arch::Aarch64);
        assert!(m.emulation.is_none());
    }

    #[test]
    fn qemu_user_is_seen_from_the_kernel_or_the_cpu() {
        let m = judge_linux("aarch64", Some("x86_64"), ARM_CPUINFO);
        assert_eq!(m.arch, Arch::Aarch64);
        let e = m.emulation.expect("emulated");
        assert_eq!(e.kind, EmulationKind::QemuUser);
        assert_eq!(
            (e.binary_arch, e.machine_arch),
            (Arch::Aarch64, Arch::X86_64)
        );
        assert!(
            e.evidence.contains("/proc/sys/kernel/arch"),
            "{}",
            e.evidence
        );
        // Older kernels have no /proc/sys/kernel/arch; QEMU 7 passes cpuinfo through.
        let m = judge_linux("aarch64", None, X86_CPUINFO);
        assert!(m.emulation.unwrap().evidence.contains("/proc/cpuinfo"));
        // A cpuinfo nothing can be read from says nothing.
        assert!(judge_linux("aarch64", None, "").emulation.is_none());
    }

    #[test]
    fn rosetta_reports_the_macs_own_target() {
        let m = judge_macos("x86_64", true);
        assert_eq!(m.arch, Arch::Aarch64);
        let e = m.emulation.expect("translated");
        assert_eq!(e.kind, EmulationKind::Rosetta);
        assert_eq!(e.binary_arch, Arch::X86_64);
        assert!(e.advice.contains("native arm64 build"));
        let m = judge_macos("arm64", false);
        assert_eq!((m.arch, m.emulation), (Arch::Aarch64, None));
    }

    #[test]
    fn uname_names_this_binarys_architecture_natively() {
        let m = detect();
        if m.emulation
            .as_ref()
            .is_none_or(|e| e.kind != EmulationKind::Rosetta)
        {
            assert_eq!(m.arch, Arch::host(), "{m:?}");
        }
    }
}
