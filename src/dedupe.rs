//! Each distinct paragraph computed once. News corpora repeat themselves:
//! wire stories syndicated across outlets, standard lines ("The Kremlin did
//! not respond to a request for comment."). A paragraph whose text, after
//! Unicode NFC and whitespace folding ([`fold`]), was already tagged in the
//! job gets the first one's labels instead of a second model pass, and
//! records where they came from (`dup_of_article_id`, `dup_of_paragraph`).
//!
//! Which paragraph is "first" is input order within a job (a shard is a
//! job). The memory of first occurrences is bounded ([`CAPACITY`] texts,
//! oldest forgotten first): a paragraph whose first copy was forgotten is
//! computed again and becomes a first itself. A resumed job primes that
//! memory from the parts it already wrote, so it marks the same rows as an
//! uninterrupted run; copies of those earlier firsts are computed again
//! (their labels are not cached across runs) but still point to them.
//!
//! Labels copied are the topic, the stances and holders, the entities and
//! the windows count; `lang` is each row's own (it weighs the article's
//! language). Entities move to the copy's offsets: where the two raw texts
//! differ (whitespace, NFC), spans are re-placed word by word, and a span
//! edge inside a word that the two write differently widens to that word.

use crate::record::{Entity, Row};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use unicode_normalization::UnicodeNormalization;

/// First occurrences remembered per job: about 100 bytes each in the read
/// stage, and one labeled row each (its text included) in the label stage.
/// Measured at capacity with 500-byte paragraphs: 60-80 MB of peak RSS
/// (docs/benchmarks.md, "Repeated paragraphs").
pub const CAPACITY: usize = 65_536;

/// A folded text's hash (the first 16 bytes of its sha256).
pub type Key = [u8; 16];

/// The text paragraphs are compared by: NFC, runs of whitespace as one
/// space, trimmed.
pub fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for w in text.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.extend(w.nfc());
    }
    out
}

/// The key of a paragraph's text.
pub fn key(text: &str) -> Key {
    let d = Sha256::digest(fold(text).as_bytes());
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

/// Where a paragraph first occurred, and whether this run computed it
/// (`false`: a part written before a resume holds it).
#[derive(Debug, Clone)]
pub struct First {
    pub article_id: Arc<str>,
    pub paragraph: u32,
    pub here: bool,
}

/// A map that forgets its oldest entry beyond `cap` entries. The read and
/// label stages each keep one, filled with the same keys in the same order,
/// so they forget the same ones.
#[derive(Debug)]
pub struct Fifo<V> {
    map: HashMap<Key, V>,
    order: VecDeque<Key>,
    cap: usize,
}

impl<V> Fifo<V> {
    pub fn new(cap: usize) -> Fifo<V> {
        Fifo {
            map: HashMap::new(),
            order: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    pub fn get(&self, k: &Key) -> Option<&V> {
        self.map.get(k)
    }

    /// Adds `k` (absent: callers insert first occurrences only).
    pub fn insert(&mut self, k: Key, v: V) {
        if self.order.len() == self.cap {
            if let Some(old) = self.order.pop_front() {
                self.map.remove(&old);
            }
        }
        self.order.push_back(k);
        self.map.insert(k, v);
    }
}

/// Copies the first occurrence's labels onto `row` (which keeps its own
/// text, offsets, language and `dup_of`).
pub fn copy_labels(first: &Row, row: &mut Row) {
    row.topic = first.topic.clone();
    row.topic_score = first.topic_score;
    row.topic_scores = first.topic_scores.clone();
    row.stances = first.stances.clone();
    row.truncated_windows = first.truncated_windows;
    row.embedding = first.embedding.clone();
    row.entities = first.entities.as_ref().map(|es| {
        if first.text == row.text {
            es.clone()
        } else {
            remap(es, &first.text, &row.text)
        }
    });
}

/// Whitespace-separated words as code-point ranges `[start, end)`.
fn words(text: &str) -> Vec<(u32, u32, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    let mut byte0 = 0;
    let mut n = 0u32;
    for (b, c) in text.char_indices() {
        match (c.is_whitespace(), start) {
            (false, None) => {
                start = Some(n);
                byte0 = b;
            }
            (true, Some(s)) => {
                out.push((s, n, &text[byte0..b]));
                start = None;
            }
            _ => {}
        }
        n += 1;
    }
    if let Some(s) = start {
        out.push((s, n, &text[byte0..]));
    }
    out
}

/// `from`'s entities placed on `to`, a text with the same [`fold`]: word
/// `i` of one is word `i` of the other; an offset inside a word moves by
/// the same amount where both write the word alike, else to the word's
/// edge (the span widens). Each entity's text is the slice of `to`.
pub fn remap(entities: &[Entity], from: &str, to: &str) -> Vec<Entity> {
    let (a, b) = (words(from), words(to));
    let place = |pos: u32, is_end: bool| -> u32 {
        let i = a
            .iter()
            .position(|w| if is_end { pos <= w.1 } else { pos < w.1 })
            .unwrap_or(a.len().saturating_sub(1));
        let (Some(wa), Some(wb)) = (a.get(i), b.get(i)) else {
            return pos;
        };
        let off = pos.saturating_sub(wa.0);
        match () {
            _ if wa.2 == wb.2 => wb.0 + off.min(wb.1 - wb.0),
            _ if is_end => wb.1,
            _ => wb.0,
        }
    };
    let chars: Vec<char> = to.chars().collect();
    entities
        .iter()
        .map(|e| {
            let (s, t) = (place(e.start, false), place(e.end, true));
            let t = t.max(s).min(chars.len() as u32);
            Entity {
                text: chars[s as usize..t as usize].iter().collect(),
                start: s,
                end: t,
                ..e.clone()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(text: &str, start: u32, end: u32) -> Entity {
        Entity {
            text: text
                .chars()
                .skip(start as usize)
                .take((end - start) as usize)
                .collect(),
            label: "LOC".into(),
            start,
            end,
            score: 0.9,
        }
    }

    #[test]
    fn folding_joins_whitespace_and_composes_marks_in_every_script() {
        let pairs = [
            ("  Zelensky\tmet\n\nScholz ", "Zelensky met Scholz"),
            ("Cafe\u{301} in Kyiv", "Café in Kyiv"),
            ("زار  الرئيس\u{a0}كييف", "زار الرئيس كييف"),
            ("Зеленський   приїхав 🇺🇦", "Зеленський приїхав 🇺🇦"),
        ];
        for (raw, folded) in pairs {
            assert_eq!(fold(raw), folded);
            assert_eq!(key(raw), key(folded));
        }
        assert_ne!(key("Kyiv"), key("kyiv"));
    }

    #[test]
    fn the_oldest_first_occurrence_is_forgotten_first() {
        let mut f = Fifo::new(2);
        let (a, b, c) = (key("a"), key("b"), key("c"));
        f.insert(a, 1);
        f.insert(b, 2);
        f.insert(c, 3);
        assert!(f.get(&a).is_none());
        assert_eq!((f.get(&b), f.get(&c)), (Some(&2), Some(&3)));
    }

    #[test]
    fn entities_move_to_the_copys_offsets_as_exact_slices() {
        let from = "Cafe\u{301} owners in  Kyiv met 🇺🇦 Зеленський.";
        let to = "  Café owners in Kyiv met\t🇺🇦 Зеленський.";
        assert_eq!(fold(from), fold(to));
        let kyiv = from.chars().position(|c| c == 'K').unwrap() as u32;
        let zel = from.chars().position(|c| c == 'З').unwrap() as u32;
        let es = [
            entity(from, 0, 5), // "Café" in NFD: 5 code points, 4 in `to`
            entity(from, kyiv, kyiv + 4),
            entity(from, zel, zel + 10),
        ];
        let moved = remap(&es, from, to);
        let texts: Vec<&str> = moved.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(texts, ["Café", "Kyiv", "Зеленський"]);
        for e in &moved {
            let slice: String = to
                .chars()
                .skip(e.start as usize)
                .take((e.end - e.start) as usize)
                .collect();
            assert_eq!(slice, e.text);
        }
        // Arabic with a clitic: an edge inside a word written alike moves
        // by the same amount.
        let (from, to) = ("وصل  بالرئيس", "وصل بالرئيس");
        let moved = remap(&[entity(from, 6, 12)], from, to);
        assert_eq!(moved[0].text, "الرئيس");
    }
}
