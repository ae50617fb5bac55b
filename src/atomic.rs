//! Files that appear whole or not at all.
//!
//! Everything paratag writes (tables, parts, manifests, sheets, heads) goes to
//! a hidden temporary name in the target's own folder, is fsynced, renamed
//! over the target, and the folder is fsynced. A crash, `kill -9` or a full
//! disk therefore leaves either the old file or the new one under the real
//! name, never a torn one. What `kill -9` can leave is a hidden `.paratag-*`
//! file; SIGINT (Ctrl-C) and SIGTERM (a scheduler's cancel) remove every
//! temporary file first ([`clean_up_on_signals`]).

use crate::error::{Error, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Temporary files not yet renamed into place, and what to tell the user if
/// the process is interrupted now.
struct Live {
    files: Vec<PathBuf>,
    hint: Option<String>,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    files: Vec::new(),
    hint: None,
});

fn live() -> std::sync::MutexGuard<'static, Live> {
    // A panic elsewhere never leaves the list half-changed.
    LIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// A temporary file removed on SIGINT/SIGTERM while this lives (the file
/// itself is its owner's to remove otherwise).
pub struct Tracked(PathBuf);

impl Drop for Tracked {
    fn drop(&mut self) {
        forget(&self.0);
    }
}

/// Creates a temporary file with `create` and tracks it at `path_of(&it)`.
/// The list is locked throughout, so a signal never finds the file created
/// and not yet listed.
pub fn tracked<T>(
    create: impl FnOnce() -> std::io::Result<T>,
    path_of: impl FnOnce(&T) -> PathBuf,
) -> std::io::Result<(T, Tracked)> {
    let mut l = live();
    let t = create()?;
    let p = path_of(&t);
    l.files.push(p.clone());
    Ok((t, Tracked(p)))
}

/// What an interrupt should say beyond "interrupted" (how to resume).
pub fn on_interrupt(hint: impl Into<String>) {
    live().hint = Some(hint.into());
}

/// On SIGINT or SIGTERM: remove every temporary file, say so in one line
/// (with the [`on_interrupt`] hint), and exit with 128 + the signal, as
/// shells report it. Finished files and a dataset's manifest are always
/// consistent on disk, so what is left is resumable.
pub fn clean_up_on_signals() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    std::thread::Builder::new()
        .name("paratag-signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                // Held until exit: nothing is renamed into place after this.
                let l = live();
                for f in &l.files {
                    let _ = std::fs::remove_file(f);
                }
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                let hint = l
                    .hint
                    .as_deref()
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                eprintln!("paratag: interrupted ({name}): temporary files removed{hint}");
                // SAFETY: `_exit` only ends the process.
                unsafe { libc::_exit(128 + sig) }
            }
        })
        .expect("start the signal thread");
}

/// The folder a file lives in (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Temporary files are created private (0600); a finished file is an
/// ordinary one (0644), readable by the team that shares the results.
pub fn ordinary_permissions(f: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Best effort: a file system without modes keeps its own.
        let _ = f.set_permissions(std::fs::Permissions::from_mode(0o644));
    }
}

/// Flushes a folder's entries (a rename is durable only once its folder is).
pub fn sync_dir(dir: &Path) -> Result<()> {
    let f = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    // Some file systems refuse fsync on a folder; the rename still happened.
    let _ = f.sync_all();
    Ok(())
}

/// A file being written under a hidden temporary name beside its target.
pub struct Pending {
    /// `None` once committed.
    tmp: Option<tempfile::NamedTempFile>,
    target: PathBuf,
    /// Dropped after `tmp` (fields drop in order): the file goes first.
    _tracked: Tracked,
}

impl Pending {
    /// Creates the temporary file now, so an unwritable folder fails before
    /// any work is done. A symlink is followed; a target that exists and is
    /// not a regular file (a device, a FIFO) is refused, since renaming over
    /// it would replace it.
    pub fn create(target: &Path) -> Result<Pending> {
        let target = &follow(target);
        if std::fs::metadata(target).is_ok_and(|m| !m.is_file() && !m.is_dir()) {
            return Err(Error::Output {
                path: target.into(),
                message: "is not a regular file (a device or a pipe); give a file name".into(),
            });
        }
        let dir = parent_of(target);
        let name = target
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (tmp, tracked) = tracked(
            || {
                tempfile::Builder::new()
                    .prefix(&format!(".paratag-{name}-"))
                    .suffix(".tmp")
                    .tempfile_in(&dir)
            },
            |t| t.path().to_path_buf(),
        )
        .map_err(|e| Error::Output {
            path: target.into(),
            message: format!("cannot write in {}: {e}", dir.display()),
        })?;
        Ok(Pending {
            tmp: Some(tmp),
            target: target.into(),
            _tracked: tracked,
        })
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    pub fn file(&self) -> &std::fs::File {
        self.tmp.as_ref().expect("not committed").as_file()
    }

    /// fsync, rename over the target, fsync the folder.
    pub fn commit(mut self) -> Result<()> {
        let target = self.target.clone();
        let err = |m: String| Error::Output {
            path: target.clone(),
            message: m,
        };
        let tmp = self.tmp.take().expect("committed once");
        tmp.as_file()
            .sync_all()
            .map_err(|e| err(format!("cannot flush to disk: {e}")))?;
        ordinary_permissions(tmp.as_file());
        // Renamed and unlisted under the lock: a signal finds the file
        // either listed or gone.
        let mut l = live();
        let tmp_path = tmp.path().to_path_buf();
        let persisted = tmp.persist(&target);
        l.files.retain(|f| *f != tmp_path);
        drop(l);
        persisted.map_err(|e| err(e.error.to_string()))?;
        sync_dir(&parent_of(&target))
    }
}

fn forget(path: &Path) {
    live().files.retain(|f| f != path);
}

/// The file a path names: a symlink's target when it resolves, else itself.
fn follow(out: &Path) -> PathBuf {
    match std::fs::symlink_metadata(out) {
        Ok(m) if m.file_type().is_symlink() => std::fs::canonicalize(out).unwrap_or(out.into()),
        _ => out.to_path_buf(),
    }
}

/// Writes `bytes` to `out` through a [`Pending`] file. A symlink is
/// followed (the file it names is replaced, the link stays); something that
/// is not a regular file (`/dev/null`, a FIFO) is written to as it is, never
/// renamed over.
pub fn atomic_write(out: &Path, bytes: &[u8]) -> Result<()> {
    let target = follow(out);
    if let Ok(m) = std::fs::metadata(&target) {
        if !m.is_file() {
            let err = |e: std::io::Error| Error::Output {
                path: out.into(),
                message: e.to_string(),
            };
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .open(&target)
                .map_err(err)?;
            return f.write_all(bytes).map_err(err);
        }
    }
    let p = Pending::create(&target)?;
    p.file().write_all(bytes).map_err(|e| Error::Output {
        path: out.into(),
        message: e.to_string(),
    })?;
    p.commit()
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_whole_files_and_leaves_no_temporary() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.json");
        super::atomic_write(&p, b"one").unwrap();
        super::atomic_write(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(d.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
        // Dropped without commit: the target is untouched, the temporary gone.
        let pending = super::Pending::create(&p).unwrap();
        drop(pending);
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
    }

    /// `--report /dev/null` writes to the device; it does not replace it
    /// with a file (as root, a rename over it would). A link stays a link.
    #[test]
    fn devices_are_written_to_and_links_followed() {
        super::atomic_write(std::path::Path::new("/dev/null"), b"report").unwrap();
        let m = std::fs::metadata("/dev/null").unwrap();
        assert!(!m.is_file(), "/dev/null is still a device");
        #[cfg(unix)]
        {
            let d = tempfile::tempdir().unwrap();
            let real = d.path().join("real.json");
            std::fs::write(&real, b"old").unwrap();
            let link = d.path().join("link.json");
            std::os::unix::fs::symlink(&real, &link).unwrap();
            super::atomic_write(&link, b"new").unwrap();
            assert!(std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink());
            assert_eq!(std::fs::read(&real).unwrap(), b"new");
        }
    }
}
