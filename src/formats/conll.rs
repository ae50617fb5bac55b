//! CoNLL / IOB2 token files for NER-only gold (ANERCorp, UniversalNER).
//!
//! One token per line, sentences separated by blank lines. A line is either
//! `TOKEN TAG` (whitespace-separated; the tag is the last column) or, when the
//! first column is a token number as in CoNLL-U-style files,
//! `ID<TAB>TOKEN<TAB>TAG…`. `# text = …` gives the sentence text, and tokens
//! are found in it in order; without it tokens are joined by single spaces.
//! `# sent_id = …` names the sentence, else it is `<file>#<n>`. Spans follow
//! conlleval semantics ([`crate::heads::tag_spans`]). `-DOCSTART-` lines
//! (CoNLL-2002/2003 document separators) are skipped and counted.

use super::{loc, Annotation, GoldItem, Span};
use crate::error::{Error, Result};
use std::path::Path;

/// The items, and how many `-DOCSTART-` lines (CoNLL-2003's document
/// separators, not sentences) were skipped.
pub fn read(path: &Path) -> Result<(Vec<GoldItem>, usize)> {
    let text = super::read_text(path)?;
    let mut docstarts = 0;
    let stem = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut out = Vec::new();
    let mut sent = Sentence::default();
    for (i, line) in text.lines().chain([""]).enumerate() {
        let line_no = i + 1;
        let l = line.trim_end_matches('\r');
        if l.trim().is_empty() {
            if !sent.tokens.is_empty() {
                let n = out.len();
                out.push(sent.finish(path, &stem, n)?);
            }
            sent = Sentence::default();
            continue;
        }
        if let Some(c) = l.strip_prefix('#') {
            let c = c.trim();
            if let Some(t) = c.strip_prefix("text =").or_else(|| c.strip_prefix("text=")) {
                sent.text = Some(t.trim().to_string());
            } else if let Some(t) = c
                .strip_prefix("sent_id =")
                .or_else(|| c.strip_prefix("sent_id="))
            {
                sent.id = Some(t.trim().to_string());
            }
            if sent.first_line == 0 {
                sent.first_line = line_no;
            }
            continue;
        }
        let cols: Vec<&str> = if l.contains('\t') {
            l.split('\t').collect()
        } else {
            l.split_whitespace().collect()
        };
        if cols.first() == Some(&"-DOCSTART-") {
            docstarts += 1;
            continue;
        }
        let (token, tag) = match cols.as_slice() {
            [id, tok, tag, ..] if id.parse::<u32>().is_ok() && cols.len() >= 3 => (*tok, *tag),
            [tok, .., tag] => (*tok, *tag),
            _ => {
                return Err(Error::input(
                    loc(path, line_no),
                    format!("expected `TOKEN TAG` or `ID TOKEN TAG`, got {l:?}"),
                ))
            }
        };
        if sent.first_line == 0 {
            sent.first_line = line_no;
        }
        sent.tokens
            .push((token.to_string(), tag.to_string(), line_no));
    }
    Ok((out, docstarts))
}

#[derive(Default)]
struct Sentence {
    text: Option<String>,
    id: Option<String>,
    first_line: usize,
    tokens: Vec<(String, String, usize)>,
}

impl Sentence {
    fn finish(self, path: &Path, stem: &str, n: usize) -> Result<GoldItem> {
        // Code-point offsets of each token in the text.
        let (text, offsets) = match self.text {
            Some(t) => {
                let mut offs = Vec::new();
                let mut byte = 0;
                for (tok, _, line) in &self.tokens {
                    let found = t[byte..].find(tok.as_str()).ok_or_else(|| {
                        Error::input(
                            loc(path, *line),
                            format!("token {tok:?} is not in the `# text =` line after the previous token"),
                        )
                    })?;
                    let s = byte + found;
                    let e = s + tok.len();
                    offs.push((t[..s].chars().count(), t[..e].chars().count()));
                    byte = e;
                }
                (t, offs)
            }
            None => {
                let mut t = String::new();
                let mut offs = Vec::new();
                let mut cp = 0;
                for (k, (tok, _, _)) in self.tokens.iter().enumerate() {
                    if k > 0 {
                        t.push(' ');
                        cp += 1;
                    }
                    t.push_str(tok);
                    let n = tok.chars().count();
                    offs.push((cp, cp + n));
                    cp += n;
                }
                (t, offs)
            }
        };
        let tags: Vec<&str> = self.tokens.iter().map(|t| t.1.as_str()).collect();
        let spans = crate::heads::tag_spans(&tags).map_err(|m| {
            let line = self
                .tokens
                .iter()
                .find(|t| m.contains(&format!("{:?}", t.1)))
                .map_or(self.first_line, |t| t.2);
            Error::input(loc(path, line), m)
        })?;
        let entities = spans
            .into_iter()
            .map(|(label, a, b)| Span {
                start: offsets[a].0 as u32,
                end: offsets[b].1 as u32,
                label,
            })
            .collect();
        Ok(GoldItem {
            location: loc(path, self.first_line),
            article_id: Some(self.id.unwrap_or_else(|| format!("{stem}#{}", n + 1))),
            paragraph: Some(0),
            text,
            annotations: vec![Annotation {
                coder: "gold".into(),
                entities: Some(entities),
                ..Default::default()
            }],
            fields: Default::default(),
            row_targets: Default::default(),
        })
    }
}
