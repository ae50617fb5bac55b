//! Where paratag keeps its model store and caches. A bottom module: the
//! model registry and the caches both need it, and neither should import
//! the other for it.
//!
//! - Writes (fetched models, installed profiles, caches) go to the
//!   writable home: `$PARATAG_HOME`, else `<user cache>/paratag/home`.
//! - Reads look in the stores in order: `$PARATAG_HOME` alone when it is
//!   set; else the store a release bundle carries beside its binary
//!   (`<bundle>/share/paratag`, found from `<bundle>/bin/paratag`), then
//!   the user's. So an unpacked bundle tags with its own default profile on
//!   a machine with no cache, and a profile the user installs still counts.

use std::path::PathBuf;

/// The writable home: `$PARATAG_HOME`, default `<user cache>/paratag/home`.
pub fn home() -> PathBuf {
    match overridden() {
        Some(h) => h,
        None => dirs::cache_dir()
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("paratag")
            .join("home"),
    }
}

fn overridden() -> Option<PathBuf> {
    std::env::var_os("PARATAG_HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The store of a release bundle: `../share/paratag` from the folder of
/// the running binary (symlinks followed), when it exists.
pub fn bundled() -> Option<PathBuf> {
    let exe = std::fs::canonicalize(std::env::current_exe().ok()?).ok()?;
    let store = exe.parent()?.parent()?.join("share").join("paratag");
    store.is_dir().then_some(store)
}

/// The stores reads look in, first match wins.
pub fn stores() -> Vec<PathBuf> {
    match overridden() {
        Some(h) => vec![h],
        None => bundled().into_iter().chain([home()]).collect(),
    }
}

/// `<store>/<kind>/<name>` in the first store that has it, else where the
/// writable home would hold it.
pub fn find(kind: &str, name: &str) -> PathBuf {
    stores()
        .into_iter()
        .map(|s| s.join(kind).join(name))
        .find(|p| p.exists())
        .unwrap_or_else(|| home().join(kind).join(name))
}
