//! What a built Linux binary needs from the machine that runs it, read from its ELF
//! headers: the CPU it is for (`e_machine`) and the newest glibc symbol version it
//! references (`.gnu.version_r`), which is the oldest glibc it runs on. `dist` checks a
//! bundle against the policy's glibc floor with it, without objdump.

use crate::names::Arch;

/// A glibc version, `2.28`.
pub type Glibc = crate::xy::Xy;

/// `2.28` (a policy's floor) or `GLIBC_2.28` (a symbol version).
pub fn glibc(s: &str) -> Option<Glibc> {
    Glibc::parse(s.strip_prefix("GLIBC_").unwrap_or(s))
}

/// A 64-bit little-endian ELF file's architecture and glibc requirement.
#[derive(Debug, PartialEq, Eq)]
pub struct Elf {
    pub arch: Arch,
    /// The newest `GLIBC_x.y` among the versions its dynamic symbols need (None: static,
    /// or no glibc symbol versions at all).
    pub glibc: Option<Glibc>,
}

const SHT_GNU_VERNEED: u32 = 0x6fff_fffe;

/// Parse the headers; an error names what is wrong.
pub fn read(bytes: &[u8]) -> Result<Elf, String> {
    if bytes.get(..4) != Some(b"\x7fELF") {
        return Err("not an ELF file".into());
    }
    if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let r = Reader(bytes);
    let arch = match r.u16(0x12)? {
        62 => Arch::X86_64,
        183 => Arch::Aarch64,
        other => Arch::Other(format!("e_machine {other}")),
    };
    let shoff = r.u64(0x28)? as usize;
    let shentsize = r.u16(0x3a)? as usize;
    let shnum = r.u16(0x3c)? as usize;
    let section = |i: usize| -> Result<Section, String> {
        let at = shoff + i * shentsize;
        Ok(Section {
            kind: r.u32(at + 4)?,
            offset: r.u64(at + 24)? as usize,
            size: r.u64(at + 32)? as usize,
            link: r.u32(at + 40)? as usize,
            info: r.u32(at + 44)? as usize,
        })
    };
    let mut glibc = None;
    for i in 0..shnum {
        let s = section(i)?;
        if s.kind != SHT_GNU_VERNEED {
            continue;
        }
        let strings = section(s.link)?;
        let mut need = s.offset;
        for _ in 0..s.info {
            let count = r.u16(need + 2)? as usize;
            let mut aux = need + r.u32(need + 8)? as usize;
            for _ in 0..count {
                let name = r.cstr(strings.offset + r.u32(aux + 8)? as usize, strings.size)?;
                if let Some(v) = name.strip_prefix("GLIBC_").and_then(Glibc::parse) {
                    glibc = glibc.max(Some(v));
                }
                aux += r.u32(aux + 12)? as usize;
            }
            let next = r.u32(need + 12)? as usize;
            if next == 0 {
                break;
            }
            need += next;
        }
        if need > s.offset + s.size {
            return Err("version needs run past their section".into());
        }
    }
    Ok(Elf { arch, glibc })
}

struct Section {
    kind: u32,
    offset: usize,
    size: usize,
    link: usize,
    info: usize,
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn bytes<const N: usize>(&self, at: usize) -> Result<[u8; N], String> {
        self.0
            .get(at..at + N)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("truncated ELF file (offset {at})"))
    }
    fn u16(&self, at: usize) -> Result<u16, String> {
        self.bytes(at).map(u16::from_le_bytes)
    }
    fn u32(&self, at: usize) -> Result<u32, String> {
        self.bytes(at).map(u32::from_le_bytes)
    }
    fn u64(&self, at: usize) -> Result<u64, String> {
        self.bytes(at).map(u64::from_le_bytes)
    }
    fn cstr(&self, at: usize, limit: usize) -> Result<&str, String> {
        let rest = self.0.get(at..).ok_or("string past the end of the file")?;
        let end = rest
            .iter()
            .take(limit)
            .position(|&b| b == 0)
            .ok_or("unterminated string")?;
        std::str::from_utf8(&rest[..end]).map_err(|_| "a symbol version is not UTF-8".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glibc_versions_order_numerically() {
        assert!(glibc("GLIBC_2.9") < glibc("2.28"));
        assert_eq!(Glibc::parse("2.28").unwrap().to_string(), "2.28");
        assert_eq!(glibc("GLIBC_PRIVATE"), None);
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn this_test_binary_reads_as_this_architecture() {
        let exe = std::env::current_exe().unwrap();
        let elf = read(&std::fs::read(exe).unwrap()).unwrap();
        assert_eq!(elf.arch, Arch::host());
        // Linked against glibc: it needs some GLIBC_2.x.
        if cfg!(target_env = "gnu") {
            assert!(elf.glibc.is_some_and(|g| g >= Glibc::new(2, 2)), "{elf:?}");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn refuses_what_is_not_a_64_bit_elf() {
        assert_eq!(read(b"#!/bin/sh\n").unwrap_err(), "not an ELF file");
        assert!(read(b"\x7fELF\x01\x01").unwrap_err().contains("64-bit"));
        let mut cut = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        cut.truncate(0x30);
        assert!(read(&cut).unwrap_err().contains("truncated"));
    }
}
