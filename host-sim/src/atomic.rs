//! Files written so that a failure never costs the user a file: checked before any work
//! starts, written whole or not at all.
//!
//! [`check_outputs`] runs before a command does anything: every output's directory must
//! exist and take a new file, an output must not be a directory, and no output may be one of
//! the command's inputs or another output. [`write_atomic`] writes a temporary file in the
//! target's directory, flushes it to the disk, and renames it over the target: a reader (or a
//! reboot) sees the old file or the new one, never half of one; on any error the temporary file
//! is removed and the target is as it was.
//!
//! ```
//! use tinytrain_sim::atomic;
//! let dir = std::env::temp_dir().join(format!("atomic-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("w.ttw");
//! atomic::check_outputs(&[&path], &[]).unwrap();
//! atomic::write_atomic(&path, b"new weights").unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), b"new weights");
//! // An output that is also an input is refused before anything runs.
//! assert!(atomic::check_outputs(&[&path], &[&path]).is_err());
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result, bail};

/// The directory a file named `path` goes into (`.` for a bare file name).
fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// The file `path` names, following a symbolic link to the file it points at, so that the
/// link stays and the file behind it is replaced.
fn resolve(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

/// Whether `a` and `b` name the same existing file (same device and inode on Unix; same
/// canonical path elsewhere).
#[must_use]
pub fn same_file(a: &Path, b: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if let (Ok(ma), Ok(mb)) = (fs::metadata(a), fs::metadata(b)) {
            return ma.dev() == mb.dev() && ma.ino() == mb.ino();
        }
    }
    matches!((fs::canonicalize(a), fs::canonicalize(b)), (Ok(ca), Ok(cb)) if ca == cb)
}

/// Whether `a` and `b` will name the same file once written: the same existing file, or the
/// same name in the same directory.
fn same_target(a: &Path, b: &Path) -> bool {
    if same_file(a, b) {
        return true;
    }
    let (Some(na), Some(nb)) = (a.file_name(), b.file_name()) else { return false };
    na == nb && same_file(parent_of(a), parent_of(b))
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A new, empty temporary file next to `target`, and its path.
fn temporary(target: &Path) -> io::Result<(File, PathBuf)> {
    let dir = parent_of(target);
    let name = target.file_name().map_or_else(|| "output".into(), |n| n.to_string_lossy().into_owned());
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = dir.join(format!(".{name}.{}-{n}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((file, path)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
}

/// Checks, before any work, that each of `outputs` can be written and is none of `inputs`
/// nor another output.
///
/// # Errors
/// One line naming the output: its directory is missing or not a directory, it is a
/// directory, its directory does not take new files, or it is an input or a second output.
pub fn check_outputs(outputs: &[&Path], inputs: &[&Path]) -> Result<()> {
    for (i, &out) in outputs.iter().enumerate() {
        let shown = out.display();
        let dir = parent_of(out);
        match fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("cannot write {shown}: {} is not a directory", dir.display()),
            Err(e) => bail!("cannot write {shown}: directory {} does not exist ({e})", dir.display()),
        }
        if out.as_os_str().is_empty() || fs::metadata(out).is_ok_and(|m| m.is_dir()) {
            bail!("cannot write {shown}: it is a directory, not a file name");
        }
        if let Some(&input) = inputs.iter().find(|&&input| same_target(out, input)) {
            bail!("cannot write {shown}: it is the input {}, which would be lost", input.display());
        }
        if let Some(&other) = outputs[..i].iter().find(|&&other| same_target(out, other)) {
            bail!("cannot write {shown}: it is also the output {}", other.display());
        }
        // The only sure test that a directory takes new files is to make one.
        let (file, tmp) = temporary(&resolve(out)).with_context(|| format!("cannot write {shown}"))?;
        drop(file);
        fs::remove_file(&tmp).with_context(|| format!("cannot remove {}", tmp.display()))?;
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically: see [`write_atomic_with`].
///
/// # Errors
/// As [`write_atomic_with`].
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |file| file.write_all(bytes))
}

/// Writes the file `path` with `write` into a temporary file in the same directory, flushes
/// it to the disk and renames it over `path` (and flushes the directory, so the rename
/// survives a power cut). A file that was there keeps its permissions. On any error the
/// temporary file is removed and `path` is untouched.
///
/// # Errors
/// `cannot write PATH: ...` with the cause.
pub fn write_atomic_with(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> Result<()> {
    let staged = stage(path, write)?;
    commit(&[staged])
}

/// Writes several files, all or none: every file is written to its temporary and flushed
/// first, and only when all of them are on the disk are they renamed over their targets.
///
/// # Errors
/// As [`write_atomic_with`]; when one file cannot be written, none is.
pub fn write_all_atomic(files: &[(&Path, &[u8])]) -> Result<()> {
    let mut staged = Vec::with_capacity(files.len());
    for &(path, bytes) in files {
        match stage(path, |file| file.write_all(bytes)) {
            Ok(s) => staged.push(s),
            Err(e) => {
                staged.iter().for_each(Staged::discard);
                return Err(e);
            }
        }
    }
    commit(&staged)
}

/// A temporary file written and flushed, waiting to be renamed over its target.
struct Staged {
    tmp: PathBuf,
    target: PathBuf,
    shown: PathBuf,
}

impl Staged {
    fn discard(&self) {
        let _ = fs::remove_file(&self.tmp);
    }
}

fn stage(path: &Path, write: impl FnOnce(&mut File) -> io::Result<()>) -> Result<Staged> {
    let target = resolve(path);
    let (mut file, tmp) = temporary(&target).with_context(|| format!("cannot write {}", path.display()))?;
    let result = (|| {
        write(&mut file)?;
        if let Ok(m) = fs::metadata(&target) {
            file.set_permissions(m.permissions())?;
        }
        file.sync_all()
    })();
    drop(file);
    let staged = Staged { tmp, target, shown: path.to_path_buf() };
    if let Err(e) = result {
        staged.discard();
        return Err(anyhow::Error::new(e).context(format!("cannot write {}", path.display())));
    }
    Ok(staged)
}

fn commit(staged: &[Staged]) -> Result<()> {
    for (i, s) in staged.iter().enumerate() {
        if let Err(e) = fs::rename(&s.tmp, &s.target) {
            staged[i..].iter().for_each(Staged::discard);
            return Err(anyhow::Error::new(e).context(format!("cannot write {}", s.shown.display())));
        }
        // Flushing the directory is what makes the rename durable; not every platform can.
        if let Ok(dir) = File::open(parent_of(&s.target)) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tinytrain-atomic-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_write_leaves_the_previous_file_and_no_temporary() {
        let dir = scratch("failed");
        let path = dir.join("w.ttw");
        fs::write(&path, b"the user's weights").unwrap();
        let err = write_atomic_with(&path, |f| {
            f.write_all(b"half of the new")?;
            Err(io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(format!("{err:#}").contains("disk full"), "{err:#}");
        assert_eq!(fs::read(&path).unwrap(), b"the user's weights");
        assert_eq!(entries(&dir), ["w.ttw"], "the temporary file is removed");
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(entries(&dir), ["w.ttw"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(unix)]
    #[test]
    fn a_link_is_kept_and_its_file_replaced_with_its_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = scratch("link");
        let real = dir.join("real.ttw");
        fs::write(&real, b"old").unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
        let link = dir.join("link.ttw");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        write_atomic(&link, b"new").unwrap();
        assert!(fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert_eq!(fs::metadata(&real).unwrap().permissions().mode() & 0o777, 0o640);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn outputs_are_checked_before_any_work() {
        let dir = scratch("check");
        let input = dir.join("in.safetensors");
        fs::write(&input, b"x").unwrap();
        let msg = |outs: &[&Path], ins: &[&Path]| format!("{:#}", check_outputs(outs, ins).unwrap_err());
        assert!(msg(&[&dir.join("missing/w.ttw")], &[]).contains("does not exist"));
        assert!(msg(&[&dir], &[]).contains("is a directory"));
        assert!(msg(&[&input.join("w.ttw")], &[]).contains("not a directory"));
        assert!(msg(&[&input], &[&input]).contains("is the input"));
        let dotted = dir.join(".").join("in.safetensors");
        assert!(msg(&[&dotted], &[&input]).contains("is the input"));
        let (a, b) = (dir.join("a.ttw"), dir.join("./a.ttw"));
        assert!(msg(&[&a, &b], &[]).contains("also the output"));
        check_outputs(&[&a, &dir.join("b.rs")], &[&input]).unwrap();
        assert_eq!(entries(&dir), ["in.safetensors"], "the check leaves nothing behind");
        #[cfg(target_os = "linux")]
        assert!(check_outputs(&[Path::new("/proc/w.ttw")], &[]).is_err(), "a directory that takes no files");
        fs::remove_dir_all(&dir).unwrap();
    }
}
