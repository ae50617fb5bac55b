//! Named default models (`models/registry.toml`, compiled in), where they live
//! on disk (`$PARATAG_HOME/models/NAME`), and `paratag models fetch`, which
//! downloads them with the `hf-hub` crate and checks their sha256.

use crate::error::{Error, Result};
use crate::hash::sha256_file;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The default sentence encoder's installed name.
pub const ENCODER: &str = "multilingual-e5-small";

pub const REGISTRY_TOML: &str = include_str!("../../models/registry.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Registry {
    pub models: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub role: String,
    pub repo: String,
    pub revision: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    #[serde(default)]
    pub sha256: String,
    /// Another repo to take this file from (e.g. a tokenizer from the base model).
    pub repo: Option<String>,
}

pub fn registry() -> Registry {
    toml::from_str(REGISTRY_TOML).expect("models/registry.toml is valid (tested)")
}

/// A registry file of the user's own (same format), e.g. to pin other models.
pub fn load_registry(path: &Path) -> Result<Registry> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    toml::from_str(&text).map_err(|e| Error::toml(path, &text, &e))
}

pub use crate::home::home;

/// Where model `name` is read from: the first store that has it (see
/// [`crate::home`]), else where it would be installed.
pub fn installed_path(name: &str) -> PathBuf {
    crate::home::find("models", name)
}

/// The `kind` folders of every store, for messages.
pub fn store_list(kind: &str) -> String {
    crate::home::stores()
        .iter()
        .map(|s| s.join(kind).display().to_string())
        .collect::<Vec<_>>()
        .join(" or ")
}

/// Where `fetch` and `import` write model `name`: the writable home, never
/// a bundle's store.
pub fn install_path(name: &str) -> PathBuf {
    home().join("models").join(name)
}

/// A model argument: an existing folder, or the name of an installed model.
pub fn resolve(arg: &str) -> Result<PathBuf> {
    let p = Path::new(arg);
    if p.exists() {
        return Ok(p.to_path_buf());
    }
    let installed = installed_path(arg);
    if installed.is_dir() {
        return Ok(installed);
    }
    let hint = if registry().models.contains_key(arg) {
        format!("run `paratag models fetch {arg}`")
    } else {
        format!(
            "known names: {}",
            registry()
                .models
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    Err(Error::model(
        p,
        format!(
            "not a folder and not installed in {} ({hint})",
            store_list("models")
        ),
    ))
}

/// Downloads registry model `name` into `$PARATAG_HOME/models/name`.
/// `endpoint` overrides the hub (default `$HF_ENDPOINT` or huggingface.co).
pub fn fetch(reg: &Registry, name: &str, endpoint: Option<&str>) -> Result<PathBuf> {
    let entry = reg.models.get(name).ok_or_else(|| {
        Error::Config(format!(
            "unknown model `{name}`; known: {}",
            reg.models.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
    })?;
    let home = home();
    let mut builder = hf_hub::api::sync::ApiBuilder::from_env()
        .with_cache_dir(home.join("hub"))
        .with_progress(false);
    if let Some(e) = endpoint {
        builder = builder.with_endpoint(e.trim_end_matches('/').to_string());
    }
    let api = builder
        .build()
        .map_err(|e| Error::Config(format!("hub client: {e}")))?;
    let out = install_path(name);
    let parent = out.parent().expect("models dir");
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".fetch-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let mut hashes = BTreeMap::new();
    let mut commit = None;
    for f in &entry.files {
        let repo_id = f.repo.clone().unwrap_or_else(|| entry.repo.clone());
        let repo = hf_hub::Repo::with_revision(
            repo_id.clone(),
            hf_hub::RepoType::Model,
            entry.revision.clone(),
        );
        let path = api.repo(repo).get(&f.name).map_err(|e| {
            Error::Config(format!(
                "fetch {repo_id}/{}@{}: {e}",
                f.name, entry.revision
            ))
        })?;
        let got = sha256_file(&path)?;
        if !f.sha256.is_empty() && !got.eq_ignore_ascii_case(&f.sha256) {
            return Err(Error::Config(format!(
                "fetch {repo_id}/{}: sha256 mismatch: expected {}, got {got}",
                f.name, f.sha256
            )));
        }
        // hf-hub caches files under snapshots/<commit>/<file>.
        if f.repo.is_none() {
            commit = path
                .parent()
                .and_then(|p| p.file_name())
                .map(|s| s.to_string_lossy().into_owned());
        }
        let dest = tmp.path().join(&f.name);
        std::fs::copy(&path, &dest).map_err(|e| Error::io(&dest, e))?;
        hashes.insert(f.name.clone(), got);
    }
    let provenance = serde_json::json!({
        "id": entry.repo,
        "revision": commit.unwrap_or_else(|| entry.revision.clone()),
        "requested_revision": entry.revision,
        "sha256": hashes,
    });
    let prov = tmp.path().join(super::PROVENANCE_FILE);
    std::fs::write(
        &prov,
        serde_json::to_string_pretty(&provenance).expect("json"),
    )
    .map_err(|e| Error::io(&prov, e))?;
    if out.exists() {
        std::fs::remove_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, &out).map_err(|e| Error::io(&out, e))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn registry_parses_and_names_the_defaults() {
        let r = super::registry();
        for name in ["nli", "ner", "multilingual-e5-small"] {
            let e = &r.models[name];
            assert!(e.files.iter().any(|f| f.name == "config.json"), "{name}");
        }
        assert_eq!(
            r.models["nli"].repo,
            "MoritzLaurer/mDeBERTa-v3-base-xnli-multilingual-nli-2mil7"
        );
    }
}
