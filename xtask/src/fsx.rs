//! File writes that never leave a half-written file: a temporary file in the same
//! folder, flushed, then renamed over the target. An existing file keeps its mode; a new
//! one gets the usual mode (0666 less the umask), as any editor would create it.

use std::io::Write;

use anyhow::{Context, Result, bail};
use camino::Utf8Path;

pub fn write_atomic(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let mut builder = tempfile::Builder::new();
    builder.prefix(".xtask-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Created with open(2)'s mode argument, so the umask applies.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .with_context(|| format!("cannot create a temporary file in {dir}"))?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        tmp.as_file().set_permissions(meta.permissions())?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {path}"))?;
    Ok(())
}

/// Whether `path` could be written: its folder exists and is writable, and the file,
/// if it exists, is not read-only.
pub fn check_writable(path: &Utf8Path) -> Result<()> {
    let dir = parent_dir(path);
    if !dir.is_dir() {
        bail!("folder {dir} does not exist");
    }
    if path.is_dir() {
        bail!("is a folder");
    }
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().readonly()
    {
        bail!("file is read-only");
    }
    tempfile::Builder::new()
        .prefix(".xtask-probe-")
        .tempfile_in(dir)
        .map(drop)
        .with_context(|| format!("folder {dir} is not writable"))
}

/// A stable 64-bit fingerprint (FNV-1a) of some bytes, as hex: for change detection.
pub fn fingerprint(parts: &[&[u8]]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.iter().chain(&[0xff]) {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("{h:016x}")
}

fn parent_dir(path: &Utf8Path) -> &Utf8Path {
    match path.parent() {
        Some(p) if !p.as_str().is_empty() => p,
        _ => Utf8Path::new("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camino::Utf8PathBuf;

    #[test]
    fn atomic_write_replaces_and_keeps_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("a.toml")).unwrap();
        write_atomic(&path, b"one").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        }
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o640);
        }
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn new_files_get_the_usual_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("new.txt")).unwrap();
        // SAFETY: umask only swaps the process's mask; restored right after the write.
        let old = unsafe { libc::umask(0o022) };
        let written = write_atomic(&path, b"x");
        unsafe { libc::umask(old) };
        written.unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644);
    }

    #[test]
    fn writability() {
        let dir = tempfile::tempdir().unwrap();
        let ok = Utf8PathBuf::from_path_buf(dir.path().join("r.json")).unwrap();
        assert!(check_writable(&ok).is_ok());
        assert!(check_writable(Utf8Path::new("/nonexistent-dir/x.json")).is_err());
    }
}
