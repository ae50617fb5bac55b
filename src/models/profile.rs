//! Tagging profiles: a codebook and the heads trained for it, installed under
//! a name in the model store (`$PARATAG_HOME/profiles/NAME/`), so
//! `paratag tag corpus.jsonl -o out.parquet` works from any folder.
//!
//! A profile folder holds copies, not links, so it keeps working when the
//! checkout it came from moves or changes:
//!
//! ```text
//! profiles/default/
//!   profile.toml      name, where it was installed from, the head folders
//!   codebook.toml
//!   heads/0-TASK/     head.toml + head.safetensors, one per head
//! ```
//!
//! The encoder is not part of it: every head pins its encoder's sha256, and
//! tagging checks that against the `--encoder` it runs.

use crate::error::{Error, Result};
use crate::models::head;
use crate::models::registry::home;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The profile `tag` uses when it is given no codebook, heads or models.
pub const DEFAULT: &str = "default";
pub const FILE: &str = "profile.toml";
const CODEBOOK: &str = "codebook.toml";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    /// Where the codebook and heads were copied from (for the record).
    pub installed_from: Vec<String>,
    pub installed_at: String,
    /// Head folders, relative to the profile folder.
    pub heads: Vec<String>,
    #[serde(skip)]
    pub dir: PathBuf,
}

impl Profile {
    pub fn codebook(&self) -> PathBuf {
        self.dir.join(CODEBOOK)
    }

    pub fn head_dirs(&self) -> Vec<PathBuf> {
        self.heads.iter().map(|h| self.dir.join(h)).collect()
    }
}

/// Where `install` writes profiles: the writable home (see [`crate::home`]).
pub fn root() -> PathBuf {
    home().join("profiles")
}

fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "profile name `{name}`: use letters, digits, `-`, `_` or `.`"
        )))
    }
}

/// Reads installed profile `name`.
pub fn load(name: &str) -> Result<Profile> {
    check_name(name)?;
    let dir = crate::home::find("profiles", name);
    let path = dir.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let known = list().into_iter().map(|p| p.0).collect::<Vec<_>>();
            let known = if known.is_empty() {
                "none is installed".to_string()
            } else {
                format!("installed: {}", known.join(", "))
            };
            return Err(Error::Config(format!(
                "no profile `{name}` in {} ({known}); scripts/setup.sh installs `{DEFAULT}`, `paratag models install-profile NAME -c CODEBOOK --heads DIR...` installs others",
                crate::models::registry::store_list("profiles")
            )));
        }
        Err(e) => return Err(Error::io(&path, e)),
    };
    let mut p: Profile = toml::from_str(&text).map_err(|e| Error::toml(&path, &text, &e))?;
    if p.name != name {
        return Err(Error::Config(format!(
            "{}: names profile `{}`, but lies in folder `{name}`",
            path.display(),
            p.name
        )));
    }
    for h in &p.heads {
        // The heads are read only from inside the profile folder.
        for f in [head::META_FILE, head::WEIGHTS_FILE] {
            if crate::models::inside(&dir, &format!("{h}/{f}"))?.is_none() {
                return Err(Error::model(&dir, format!("`{h}/{f}` is missing")));
            }
        }
    }
    p.dir = dir;
    Ok(p)
}

/// The names of the installed profiles, sorted.
pub fn names() -> Vec<String> {
    let mut names: Vec<String> = crate::home::stores()
        .iter()
        .filter_map(|s| std::fs::read_dir(s.join("profiles")).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.path().join(FILE).is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        // Hidden folders are installs in progress or old copies being removed.
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Installed profiles by name, with their heads' tasks (or why one is broken).
pub fn list() -> Vec<(String, std::result::Result<Vec<String>, String>)> {
    names()
        .into_iter()
        .map(|n| {
            let tasks = load(&n).map_err(|e| e.to_string()).and_then(|p| {
                p.head_dirs()
                    .iter()
                    .map(|d| {
                        head::read_meta(d)
                            .map(|m| m.task.name())
                            .map_err(|e| e.to_string())
                    })
                    .collect()
            });
            (n, tasks)
        })
        .collect()
}

/// Copies `codebook` and `heads` into profile `name`, replacing one that is
/// there. The new folder is built aside and renamed in, so a failed install
/// leaves the old profile as it was.
pub fn install(name: &str, codebook: &Path, heads: &[PathBuf]) -> Result<PathBuf> {
    check_name(name)?;
    // Both must load: a profile that cannot tag is refused now, not at use.
    crate::codebook::Codebook::load(codebook)?;
    let (tasks, adapter) = check_heads(heads)?;
    let root = root();
    std::fs::create_dir_all(&root).map_err(|e| Error::io(&root, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".install-")
        .tempdir_in(&root)
        .map_err(|e| Error::io(&root, e))?;
    copy_file(codebook, &tmp.path().join(CODEBOOK))?;
    let rel = copy_heads(tmp.path(), heads, &tasks, adapter.as_ref())?;
    let from = std::iter::once(codebook)
        .chain(heads.iter().map(PathBuf::as_path))
        .map(|p| {
            std::fs::canonicalize(p)
                .map(|c| c.display().to_string())
                .map_err(|e| Error::io(p, e))
        })
        .collect::<Result<Vec<_>>>()?;
    let p = Profile {
        name: name.to_string(),
        installed_from: from,
        installed_at: chrono::Utc::now().to_rfc3339(),
        heads: rel,
        dir: PathBuf::new(),
    };
    let text = toml::to_string(&p).map_err(|e| Error::Config(format!("profile: {e}")))?;
    let file = tmp.path().join(FILE);
    std::fs::write(&file, text).map_err(|e| Error::io(&file, e))?;
    let out = root.join(name);
    // Move the old one aside first: rename cannot replace a non-empty folder.
    let old = root.join(format!(".old-{name}-{}", std::process::id()));
    if out.exists() {
        std::fs::rename(&out, &old).map_err(|e| Error::io(&out, e))?;
    }
    let kept = tmp.keep();
    if let Err(e) = std::fs::rename(&kept, &out) {
        let _ = std::fs::rename(&old, &out);
        return Err(Error::io(&out, e));
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
    }
    Ok(out)
}

/// The heads' tasks (one head per task), and the adapter they share if
/// they were trained with one (it comes along: a profile's heads share one
/// encoder pass).
/// An adapter folder and its weights' sha256.
type AdapterOf = (PathBuf, String);

fn check_heads(heads: &[PathBuf]) -> Result<(Vec<crate::task::Task>, Option<AdapterOf>)> {
    let mut tasks = vec![];
    // Heads trained with an adapter bring it along (one per profile: the
    // heads of a run share one encoder pass).
    let mut adapter: Option<(PathBuf, String)> = None;
    for d in heads {
        let meta = head::read_meta(d)?;
        if let Some(sha) = &meta.adapter_sha256 {
            match &adapter {
                Some((_, s)) if s != sha => {
                    return Err(Error::model(
                        d,
                        "was trained with another adapter than the other heads; a profile's heads share one encoder pass",
                    ))
                }
                Some(_) => {}
                None => adapter = Some((crate::models::lora::dir_of_head(d), sha.clone())),
            }
        }
        if tasks.contains(&meta.task) {
            return Err(Error::model(
                d,
                format!("a second head for `{}`; pass one", meta.task),
            ));
        }
        tasks.push(meta.task);
    }
    Ok((tasks, adapter))
}

/// Copies the heads into `dir/heads/N-TASK/` and their adapter into
/// `dir/heads/adapter/`; the heads' folders relative to `dir`.
fn copy_heads(
    dir: &Path,
    heads: &[PathBuf],
    tasks: &[crate::task::Task],
    adapter: Option<&AdapterOf>,
) -> Result<Vec<String>> {
    let mut rel = vec![];
    for (i, (d, task)) in heads.iter().zip(tasks).enumerate() {
        let folder: String = task
            .name()
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        // Numbered, so tasks that differ only in punctuation stay apart.
        let r = format!("heads/{i}-{folder}");
        let dest = dir.join(&r);
        std::fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
        for f in [head::META_FILE, head::WEIGHTS_FILE] {
            let src = crate::models::inside(d, f)?
                .ok_or_else(|| Error::model(d, format!("missing {f}")))?;
            copy_file(&src, &dest.join(f))?;
        }
        rel.push(r);
    }
    if let Some((adir, sha)) = adapter {
        use crate::models::lora;
        if &lora::weights_sha256(adir)? != sha {
            return Err(Error::model(
                adir,
                "does not match the adapter its heads were trained with",
            ));
        }
        let dest = dir.join("heads").join(lora::DIR);
        std::fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
        for f in [lora::META_FILE, lora::WEIGHTS_FILE] {
            let src = crate::models::inside(adir, f)?
                .ok_or_else(|| Error::model(adir, format!("missing {f}")))?;
            copy_file(&src, &dest.join(f))?;
        }
    }
    Ok(rel)
}

fn copy_file(src: &Path, dest: &Path) -> Result<()> {
    std::fs::copy(src, dest).map_err(|e| Error::io(src, e))?;
    Ok(())
}
