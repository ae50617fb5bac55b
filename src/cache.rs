//! On-disk caches under the model store (`$PARATAG_HOME/cache`).
//!
//! - **File hashes**: a weight file's sha256, keyed by its resolved path,
//!   size, modification time and inode, so an unchanged 470 MB encoder is
//!   not re-hashed on every run. Any change to the file through the file
//!   system changes the key; remove `$PARATAG_HOME/cache` to forget.
//! - **Model outputs** ([`FeatureCache`]): for `eval`, `calibrate` and
//!   `train`, which tag the same gold texts again and again, each model
//!   output is kept under (model weights sha256, output kind, sha256 of the
//!   exact token ids of the window). A cached output is the f32 the model
//!   gave, so results are identical with and without the cache. The folder
//!   is bounded (`PARATAG_FEATURE_CACHE_MB`, default 2048): the least
//!   recently used entries go first.

use crate::error::{Error, Result};
use crate::tokenize::Encoded;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    crate::home::home().join("cache")
}

/// The sha256 of `path`, from the hash cache when the file is unchanged.
pub fn file_sha256(path: &Path) -> Result<String> {
    let entry = hash_entry(path)?;
    if let Some(h) = read_hash(&entry) {
        return Ok(h);
    }
    let h = crate::hash::sha256_file(path)?;
    write_hash(&entry, &h);
    Ok(h)
}

/// Hashes `path` in full (`paratag models verify`) and records it; returns
/// the fresh hash and what the cache held, if anything.
pub fn rehash(path: &Path) -> Result<(String, Option<String>)> {
    let entry = hash_entry(path)?;
    let cached = read_hash(&entry);
    let h = crate::hash::sha256_file(path)?;
    write_hash(&entry, &h);
    Ok((h, cached))
}

/// The cache entry of a file: its resolved path, size, mtime and inode.
fn hash_entry(path: &Path) -> Result<PathBuf> {
    let real = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
    let md = std::fs::metadata(&real).map_err(|e| Error::io(path, e))?;
    let modified = md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&md);
    #[cfg(not(unix))]
    let inode = 0u64;
    let key = crate::hash::sha256_bytes(
        format!("{}\n{}\n{modified}\n{inode}", real.display(), md.len()).as_bytes(),
    );
    Ok(root().join("sha256").join(key))
}

fn read_hash(entry: &Path) -> Option<String> {
    let h = std::fs::read_to_string(entry).ok()?;
    let h = h.trim();
    (h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit())).then(|| h.to_string())
}

fn write_hash(entry: &Path, h: &str) {
    // A cache that cannot be written only costs the next run a hash.
    if std::fs::create_dir_all(entry.parent().expect("has a parent")).is_ok() {
        let _ = crate::atomic::atomic_write(entry, h.as_bytes());
    }
}

/// Model outputs on disk, per model.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
    cap: u64,
}

/// Entries are written below `dir/xx/` by key prefix.
const FANOUT: usize = 2;

impl FeatureCache {
    /// The cache of the model whose weights have `sha256`.
    pub fn open(sha256: &str) -> Result<FeatureCache> {
        let base = root().join("features");
        let dir = base.join(&sha256[..16.min(sha256.len())]);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let mb = std::env::var("PARATAG_FEATURE_CACHE_MB")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(2048);
        Ok(FeatureCache { dir, cap: mb << 20 })
    }

    /// The key of output `kind` for one model input window.
    /// `None` when the bound is 0 (`PARATAG_FEATURE_CACHE_MB=0`: no cache).
    pub fn enabled(self) -> Option<FeatureCache> {
        (self.cap > 0).then_some(self)
    }

    pub fn key(kind: &str, e: &Encoded) -> String {
        let mut h = Sha256::new();
        h.update(kind.as_bytes());
        h.update([0]);
        for v in [&e.ids, &e.type_ids] {
            h.update((v.len() as u64).to_le_bytes());
            for x in v.iter() {
                h.update(x.to_le_bytes());
            }
        }
        hex::encode(h.finalize())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(&key[..FANOUT]).join(key)
    }

    pub fn get(&self, key: &str) -> Option<Vec<f32>> {
        let p = self.path(key);
        let bytes = std::fs::read(&p).ok()?;
        if bytes.len() % 4 != 0 {
            return None;
        }
        // Touched, so eviction drops the least recently used first.
        if let Ok(f) = std::fs::File::options().append(true).open(&p) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        Some(
            bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        )
    }

    pub fn put(&self, key: &str, values: &[f32]) {
        let p = self.path(key);
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        if std::fs::create_dir_all(p.parent().expect("has a parent")).is_ok() {
            let _ = crate::atomic::atomic_write(&p, &bytes);
        }
    }

    /// Removes the least recently used entries of every model's cache
    /// until they fit in the bound.
    pub fn trim(&self) {
        let Some(base) = self.dir.parent() else {
            return;
        };
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = walkdir::WalkDir::new(base)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .filter_map(|e| {
                let md = e.metadata().ok()?;
                Some((md.modified().ok()?, md.len(), e.into_path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        if total <= self.cap {
            return;
        }
        files.sort();
        for (_, len, p) in files {
            if total <= self.cap / 10 * 8 {
                break;
            }
            if std::fs::remove_file(&p).is_ok() {
                total -= len;
            }
        }
    }
}
