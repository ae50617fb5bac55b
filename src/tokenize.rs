//! Tokenization with HF `tokenizers`, in code-point offsets, and windowing.
//!
//! paratag never lets a tokenizer or model truncate silently: a text longer
//! than the model's window is cut into overlapping windows here, and for NLI
//! pairs only the premise is windowed, never the hypothesis.

use crate::error::{Error, Result};
use std::path::Path;
use tokenizers::{Encoding, PostProcessor, Tokenizer, TruncationDirection};

/// One model input: ids plus the token metadata NER needs.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub ids: Vec<i64>,
    pub type_ids: Vec<i64>,
    /// Code-point offsets into the (first) text; `(0, 0)` for special tokens.
    pub offsets: Vec<(usize, usize)>,
    pub word_ids: Vec<Option<u32>>,
    /// 1 for tokens of the first sequence that are not special tokens.
    pub content: Vec<bool>,
    /// Index of this window's first content token among all the text's tokens.
    pub first: usize,
    /// Number of windows the text was split into.
    pub windows: usize,
}

impl Encoded {
    pub fn len(&self) -> usize {
        self.ids.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

pub struct Tok {
    tokenizer: Tokenizer,
    /// Longest input the model accepts, special tokens included.
    pub max_len: usize,
}

impl Tok {
    pub fn load(path: &Path, max_len: usize) -> Result<Tok> {
        let mut tokenizer = Tokenizer::from_file(path)
            .map_err(|e| Error::model(path, format!("cannot read tokenizer.json: {e}")))?;
        // Windowing is ours; a tokenizer.json may carry its own truncation.
        tokenizer
            .with_truncation(None)
            .map_err(|e| Error::model(path, e.to_string()))?;
        tokenizer.with_padding(None);
        Ok(Tok { tokenizer, max_len })
    }

    pub fn token_id(&self, token: &str) -> Option<u32> {
        self.tokenizer.token_to_id(token)
    }

    fn added(&self, pair: bool) -> usize {
        self.tokenizer
            .get_post_processor()
            .map(|p| p.added_tokens(pair))
            .unwrap_or(0)
    }

    fn raw(&self, text: &str) -> Result<Encoding> {
        Ok(self.tokenizer.encode_char_offsets(text, false)?)
    }

    /// Content tokens of `text` (no special tokens).
    pub fn count(&self, text: &str) -> Result<usize> {
        Ok(self.raw(text)?.len())
    }

    /// Windows over `text` with `overlap` tokens shared between neighbours.
    pub fn windows(&self, text: &str, overlap: usize) -> Result<Vec<Encoded>> {
        let room = self.max_len.saturating_sub(self.added(false));
        self.split(self.raw(text)?, None, room, overlap)
    }

    /// `(premise window, hypothesis)` pairs; the hypothesis is always whole.
    pub fn pair_windows(
        &self,
        premise: &str,
        hypothesis: &str,
        overlap: usize,
    ) -> Result<Vec<Encoded>> {
        let hyp = self.raw(hypothesis)?;
        let room = self.max_len.saturating_sub(self.added(true) + hyp.len());
        if room < 8 {
            return Err(Error::Config(format!(
                "hypothesis `{hypothesis}` takes {} tokens, leaving no room for the text in a {}-token window",
                hyp.len(),
                self.max_len
            )));
        }
        self.split(self.raw(premise)?, Some(hyp), room, overlap)
    }

    fn split(
        &self,
        mut enc: Encoding,
        pair: Option<Encoding>,
        room: usize,
        overlap: usize,
    ) -> Result<Vec<Encoded>> {
        if room == 0 {
            return Err(Error::Config(format!(
                "model window of {} tokens is too small",
                self.max_len
            )));
        }
        let overlap = overlap.min(room / 2);
        let mut parts = vec![];
        if enc.len() > room {
            enc.truncate(room, overlap, TruncationDirection::Right);
            let rest = enc.take_overflowing();
            parts.push(enc);
            parts.extend(rest);
        } else {
            parts.push(enc);
        }
        let step = room - overlap;
        let n = parts.len();
        parts
            .into_iter()
            .enumerate()
            .map(|(k, p)| {
                let e = self.tokenizer.post_process(p, pair.clone(), true)?;
                Ok(to_encoded(&e, k * step, n))
            })
            .collect()
    }
}

fn to_encoded(e: &Encoding, first: usize, windows: usize) -> Encoded {
    let special = e.get_special_tokens_mask();
    let seq = e.get_sequence_ids();
    Encoded {
        ids: e.get_ids().iter().map(|&i| i as i64).collect(),
        type_ids: e.get_type_ids().iter().map(|&i| i as i64).collect(),
        offsets: e.get_offsets().to_vec(),
        word_ids: e.get_word_ids().to_vec(),
        content: special
            .iter()
            .zip(seq)
            .map(|(&s, q)| s == 0 && q == Some(0))
            .collect(),
        first,
        windows,
    }
}
