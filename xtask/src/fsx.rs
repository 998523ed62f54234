//! File writes that never leave a half-written file: a temporary file in the same
//! folder, flushed, then renamed over the target. An existing file keeps its mode; a new
//! one gets the usual mode (0666 less the umask), as any editor would create it.

use std::io::Write;

use anyhow::{Context, Result, bail};
use camino::{Utf8Path, Utf8PathBuf};

use crate::error;
use crate::process::Sigint;

/// Temporary files are named `.xtask-tmp-<pid>-<random>`, so a later run can tell the
/// ones a killed run left behind (their process is gone) and remove only those.
const TMP_PREFIX: &str = ".xtask-tmp-";

/// Replace `path` with `bytes` atomically. A symbolic link is followed (its target is
/// rewritten, the link stays); the file keeps its mode, and its owner and group when we
/// are root; a file we may not write is refused (exit 2). Interrupts wait until the
/// rename is done or the temporary file removed.
pub fn write_atomic(path: &Utf8Path, bytes: &[u8]) -> Result<()> {
    let target = resolve_link(path)?;
    let existing = std::fs::metadata(&target).ok();
    if existing.is_some() {
        check_writable(&target).map_err(|e| error::usage(format!("{path}: {e:#}")))?;
    }
    #[cfg(unix)]
    if let Some(links) = existing.as_ref().map(std::os::unix::fs::MetadataExt::nlink)
        && links > 1
    {
        // An atomic replace gives this name a new file; the other names keep the old.
        errln!(
            "note: {path} has {links} hard links: only this name gets the new text (the others keep the old file)"
        );
    }
    let dir = parent_dir(&target);
    remove_leftovers(dir);
    let _section = Sigint::catch()?;
    let mut builder = tempfile::Builder::new();
    let prefix = format!("{TMP_PREFIX}{}-", std::process::id());
    builder.prefix(&prefix);
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
    if let Some(meta) = &existing {
        tmp.as_file().set_permissions(meta.permissions())?;
        keep_owner(tmp.as_file(), meta)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(&target)
        .map_err(|e| e.error)
        .with_context(|| format!("cannot replace {target}"))?;
    sync_dir(dir);
    Ok(())
}

/// Where a path really is: the final target of a symbolic link (which may not exist
/// yet), else the path itself.
fn resolve_link(path: &Utf8Path) -> Result<Utf8PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let to = p
                    .read_link_utf8()
                    .map_err(|e| error::usage(format!("{path}: cannot read the link: {e}")))?;
                p = match to.is_absolute() {
                    true => to,
                    false => parent_dir(&p).join(to),
                };
            }
            _ => return Ok(p),
        }
    }
    Err(error::usage(format!(
        "{path}: too many levels of symbolic links"
    )))
}

#[cfg(unix)]
fn keep_owner(file: &std::fs::File, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    // Only root can give a file away; a user's own files stay theirs anyway.
    if rustix::process::geteuid().is_root() {
        std::os::unix::fs::fchown(file, Some(meta.uid()), Some(meta.gid()))
            .context("cannot keep the file's owner")?;
    }
    Ok(())
}

#[cfg(not(unix))]
fn keep_owner(_file: &std::fs::File, _meta: &std::fs::Metadata) -> Result<()> {
    Ok(())
}

/// Make the rename durable: fsync the folder that holds the file.
fn sync_dir(dir: &Utf8Path) {
    #[cfg(unix)]
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Remove temporary files of ours whose process is gone (a run killed mid-write).
fn remove_leftovers(dir: &Utf8Path) {
    let Ok(entries) = dir.read_dir_utf8() else {
        return;
    };
    for e in entries.filter_map(Result::ok) {
        let Some(rest) = e.file_name().strip_prefix(TMP_PREFIX) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if pid as u32 != std::process::id() && !alive(pid) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(unix)]
fn alive(pid: i32) -> bool {
    // Signal 0 only checks that the process exists; EPERM says it does, as another user's.
    rustix::process::Pid::from_raw(pid).is_some_and(|p| {
        matches!(
            rustix::process::test_kill_process(p),
            Ok(()) | Err(rustix::io::Errno::PERM)
        )
    })
}

#[cfg(not(unix))]
fn alive(_pid: i32) -> bool {
    true
}

/// How a command treats a file it generates: write it, or only say whether it differs
/// (`--check`, exit 1 on drift) or how (`--diff`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Write,
    Check,
    Diff,
}

impl Mode {
    /// From a command's `--check` and `--diff` flags (clap keeps them exclusive).
    pub fn of(check: bool, diff: bool) -> Mode {
        match (check, diff) {
            (true, _) => Mode::Check,
            (_, true) => Mode::Diff,
            _ => Mode::Write,
        }
    }
}

/// What [`ensure_file`] found and did.
pub struct Ensured {
    pub changed: bool,
    pub written: bool,
    /// A unified diff `a/REL` to `b/REL`; empty when nothing differs.
    pub diff: String,
}

/// Bring the generated file `path` (called `rel` in the diff) from `old` (its text now,
/// empty when absent) to `new`: in [`Mode::Write`] it is written atomically, its folder
/// created, when it differs; the other modes write nothing. A file we may not write is
/// exit 2, naming it and the modes that still work.
pub fn ensure_file(
    path: &Utf8Path,
    rel: &str,
    old: &str,
    new: &str,
    mode: Mode,
) -> Result<Ensured> {
    let changed = old != new;
    let diff = if changed {
        similar::TextDiff::from_lines(old, new)
            .unified_diff()
            .context_radius(3)
            .header(&format!("a/{rel}"), &format!("b/{rel}"))
            .to_string()
    } else {
        String::new()
    };
    let written = changed && mode == Mode::Write;
    if written {
        let dir = parent_dir(path);
        std::fs::create_dir_all(dir)
            .map_err(|e| error::usage(format!("{dir}: cannot create: {e}")))?;
        check_writable(path).map_err(|e| {
            error::usage(format!(
                "{path}: cannot write: {e:#} (make it writable, or use --check / --diff)"
            ))
        })?;
        write_atomic(path, new.as_bytes()).map_err(|e| error::usage(format!("{path}: {e:#}")))?;
    }
    Ok(Ensured {
        changed,
        written,
        diff,
    })
}

/// Whether `path` could be written: its folder exists and is writable, and the file,
/// if it exists, may be written by us (asked of the OS; nothing is created).
pub fn check_writable(path: &Utf8Path) -> Result<()> {
    let dir = parent_dir(path);
    if !dir.is_dir() {
        bail!("folder {dir} does not exist");
    }
    if path.is_dir() {
        bail!("is a folder");
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().readonly() {
            bail!("file is read-only");
        }
        if !may_write(path) {
            bail!("you may not write this file");
        }
    }
    if !may_write(dir) {
        bail!("folder {dir} is not writable");
    }
    Ok(())
}

#[cfg(unix)]
fn may_write(path: &Utf8Path) -> bool {
    rustix::fs::access(path.as_std_path(), rustix::fs::Access::WRITE_OK).is_ok()
}

#[cfg(not(unix))]
fn may_write(_path: &Utf8Path) -> bool {
    true
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

/// Copy the tree `from` into `to` (created), leaving out the entries named in `skip`
/// (caches such as `__pycache__`). Errors name the file (fs-err).
pub fn copy_tree(
    from: &std::path::Path,
    to: &std::path::Path,
    skip: &[&str],
) -> std::io::Result<()> {
    fs_err::create_dir_all(to)?;
    for e in fs_err::read_dir(from)? {
        let e = e?;
        if skip.iter().any(|s| e.file_name() == *s) {
            continue;
        }
        let dest = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_tree(&e.path(), &dest, skip)?;
        } else {
            fs_err::copy(e.path(), dest)?;
        }
    }
    Ok(())
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
    fn ensure_file_diffs_with_context_and_writes_only_in_write_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = Utf8PathBuf::from_path_buf(dir.path().join("new/f")).unwrap();
        let old: String = (1..=20).map(|i| format!("line {i}\n")).collect();
        let new = old
            .replace("line 3\n", "line three\n")
            .replace("line 18\n", "")
            .replace("line 20\n", "line 20\nline 21\n");
        for mode in [Mode::Check, Mode::Diff] {
            let e = ensure_file(&path, "f", &old, &new, mode).unwrap();
            assert!(e.changed && !e.written);
            assert!(!path.exists(), "{mode:?} wrote");
            assert_eq!(
                e.diff,
                "--- a/f\n+++ b/f\n@@ -1,6 +1,6 @@\n line 1\n line 2\n-line 3\n+line three\n line 4\n line 5\n line 6\n\
                 @@ -15,6 +15,6 @@\n line 15\n line 16\n line 17\n-line 18\n line 19\n line 20\n+line 21\n"
            );
        }
        let e = ensure_file(&path, "f", "", &new, Mode::Write).unwrap();
        assert!(e.written, "the folder is created");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), new);
        let e = ensure_file(&path, "f", &new, &new, Mode::Write).unwrap();
        assert!(!e.changed && !e.written && e.diff.is_empty());
    }

    #[cfg(unix)]
    #[test]
    fn patch_applies_the_diff() {
        // The real `patch` must turn the old text into the new one, a missing final
        // newline included.
        let Some(patch) = crate::process::find("patch") else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let f = Utf8PathBuf::from_path_buf(dir.path().join("f")).unwrap();
        let old = "[project]\nname = \"x\"\n# comment\ndependencies = [\n  \"a\",\n  \"b\",\n]\n\n[tool.x]\nk = 1\n";
        let new = "[project]\nname = \"x\"\n# comment\ndependencies = [\n  \"a ; sys_platform == 'linux'\",\n]\n\n[tool.x]\nk = 1\n[tool.y]\nz = 2";
        std::fs::write(&f, old).unwrap();
        let e = ensure_file(&f, "f", old, new, Mode::Diff).unwrap();
        std::fs::write(dir.path().join("p"), e.diff).unwrap();
        let out = crate::process::Cmd::new(patch)
            .args(["-s", "-p1", "-i", "p"])
            .dir(dir.path())
            .probe(std::time::Duration::from_secs(30));
        assert!(out.ok_stdout().is_some(), "patch: {out:?}");
        assert_eq!(std::fs::read_to_string(&f).unwrap(), new);
    }

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
        // The process's mask, restored right after the write.
        let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o022));
        let written = write_atomic(&path, b"x");
        rustix::process::umask(old);
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
