//! Where paratag keeps its model store and caches: `$PARATAG_HOME`, else
//! `<user cache>/paratag/home`. A bottom module: the model registry and the
//! caches both need it, and neither should import the other for it.

use std::path::PathBuf;

/// `$PARATAG_HOME`, default `<user cache>/paratag/home`.
pub fn home() -> PathBuf {
    match std::env::var_os("PARATAG_HOME") {
        Some(h) if !h.is_empty() => PathBuf::from(h),
        _ => dirs::cache_dir()
            .unwrap_or_else(|| PathBuf::from(".cache"))
            .join("paratag")
            .join("home"),
    }
}
