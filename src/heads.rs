//! From model outputs to labels: NLI zero-shot scoring, embedding-similarity
//! scoring, and NER aggregation and span decoding.
//!
//! Everything here is plain arithmetic on `f32` slices, so it is tested
//! without a model and is identical whatever the batch layout was.

use crate::error::{Error, Result};
use std::path::Path;

// ---------------------------------------------------------------- NLI ------

/// Where entailment and its opposite sit in an NLI head, read from `id2label`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NliLabels {
    pub entailment: usize,
    /// Contradiction for a 3-way head, not_entailment for a 2-way head.
    pub opposite: usize,
}

pub fn nli_labels(labels: &[String], model: &Path) -> Result<NliLabels> {
    let norm: Vec<String> = labels
        .iter()
        .map(|l| l.to_lowercase().replace([' ', '-'], "_"))
        .collect();
    let find = |p: &dyn Fn(&str) -> bool| norm.iter().position(|l| p(l));
    let entailment = find(&|l| l.starts_with("entail"));
    let contradiction = find(&|l| l.starts_with("contradict"));
    let not_entailment = find(&|l| l.starts_with("not_entail") || l.starts_with("non_entail"));
    match (entailment, contradiction.or(not_entailment)) {
        (Some(entailment), Some(opposite)) => Ok(NliLabels { entailment, opposite }),
        _ => Err(Error::model(
            model,
            format!(
                "cannot read NLI labels from id2label {labels:?}: need `entailment` and `contradiction` or `not_entailment`"
            ),
        )),
    }
}

pub fn softmax(xs: &[f32], temperature: f32) -> Vec<f32> {
    let m = xs.iter().cloned().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f32> = xs.iter().map(|x| ((x - m) / temperature).exp()).collect();
    let s: f32 = e.iter().sum();
    e.into_iter().map(|x| x / s).collect()
}

/// P(entailment) against its opposite alone (multi-label and stance scoring).
pub fn entail_prob(logits: &[f32], l: NliLabels) -> f32 {
    softmax(&[logits[l.entailment], logits[l.opposite]], 1.0)[0]
}

/// Mean over windows of a per-window score vector.
pub fn mean_rows(rows: &[Vec<f32>]) -> Vec<f32> {
    let n = rows.len().max(1) as f32;
    let width = rows.first().map_or(0, |r| r.len());
    (0..width)
        .map(|j| rows.iter().map(|r| r[j]).sum::<f32>() / n)
        .collect()
}

/// Topic scores from NLI logits, `logits[label][window]`.
/// Multi-label: each label's P(entailment) vs contradiction.
/// Single-label: softmax of the entailment logits across labels.
pub fn nli_topic_scores(logits: &[Vec<Vec<f32>>], l: NliLabels, multi_label: bool) -> Vec<f32> {
    let windows = logits.first().map_or(0, |w| w.len());
    let per_window: Vec<Vec<f32>> = (0..windows)
        .map(|w| {
            if multi_label {
                logits.iter().map(|lab| entail_prob(&lab[w], l)).collect()
            } else {
                let ent: Vec<f32> = logits.iter().map(|lab| lab[w][l.entailment]).collect();
                softmax(&ent, 1.0)
            }
        })
        .collect();
    mean_rows(&per_window)
}

// ---------------------------------------------------------- embeddings ----

pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Topic scores from unit embeddings: `windows` of the paragraph, `labels` of
/// the topics. Single-label: softmax of cosine / T across labels. Multi-label:
/// a logistic of each cosine against the mean cosine, over T.
pub fn embedding_topic_scores(
    windows: &[Vec<f32>],
    labels: &[Vec<f32>],
    temperature: f32,
    multi_label: bool,
) -> Vec<f32> {
    let per_window: Vec<Vec<f32>> = windows
        .iter()
        .map(|w| {
            let sims: Vec<f32> = labels.iter().map(|l| dot(w, l)).collect();
            if multi_label {
                let mean = sims.iter().sum::<f32>() / sims.len().max(1) as f32;
                sims.iter()
                    .map(|s| 1.0 / (1.0 + (-(s - mean) / temperature).exp()))
                    .collect()
            } else {
                softmax(&sims, temperature)
            }
        })
        .collect();
    mean_rows(&per_window)
}

/// `(P(favor), P(against))` by similarity to the favor, against and neutral anchors.
pub fn embedding_stance(
    windows: &[Vec<f32>],
    anchors: &[Vec<f32>; 3],
    temperature: f32,
) -> (f32, f32) {
    let per: Vec<Vec<f32>> = windows
        .iter()
        .map(|w| {
            softmax(
                &anchors.iter().map(|a| dot(w, a)).collect::<Vec<_>>(),
                temperature,
            )
        })
        .collect();
    let m = mean_rows(&per);
    (m[0], m[1])
}

/// Stance label and score: the larger side if it reaches the threshold, else
/// "none" scored 1 − the larger side.
pub fn stance_decision(favor: f32, against: f32, threshold: f32) -> (&'static str, f32) {
    let (label, p) = if favor >= against {
        ("favor", favor)
    } else {
        ("against", against)
    };
    if p >= threshold {
        (label, p)
    } else {
        ("none", 1.0 - p)
    }
}

/// Whose a stance decision is, from P(reported) of a holder head: `None`
/// for `none` or without a head. With the codebook's `holder = "author"`
/// a reported position becomes `none`, scored 1 − P(the author holds it).
pub fn holder_decision(
    label: &'static str,
    score: f32,
    reported: Option<f32>,
    reading: crate::codebook::Holder,
) -> (&'static str, f32, Option<&'static str>) {
    let Some(r) = reported.filter(|_| label != "none") else {
        return (label, score, None);
    };
    let holder = if r >= 0.5 { "reported" } else { "author" };
    match (reading, holder) {
        (crate::codebook::Holder::Author, "reported") => {
            ("none", 1.0 - score * (1.0 - r), Some(holder))
        }
        _ => (label, score, Some(holder)),
    }
}

/// Rounds a score to 6 decimals: batch shape and thread count perturb float
/// sums in the last bits, and the output should not show it.
pub fn round(x: f32) -> f32 {
    ((x as f64 * 1e6).round() / 1e6) as f32
}

// ----------------------------------------------------------------- NER ------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregation {
    First,
    Average,
    Max,
}

impl crate::choice::Choice for Aggregation {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (Aggregation::First, "first", ""),
        (Aggregation::Average, "average", ""),
        (Aggregation::Max, "max", ""),
    ];
}

/// Where an entity span starts when a clitic is written onto the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntitySpans {
    /// The name alone: clitics stay outside ("و[قطر]", "l'[Ukraine]"), as
    /// datasets/ukraine-aid/GUIDELINES.md says.
    Name,
    /// Whole words: a span that starts inside a word starts at the word's
    /// start ("[وقطر]"), as token-level corpora (ANERCorp, AQMAR) mark them.
    Word,
}

impl crate::choice::Choice for EntitySpans {
    const CHOICES: &'static [(Self, &'static str, &'static str)] = &[
        (
            EntitySpans::Name,
            "name",
            "clitics outside the span (the guideline)",
        ),
        (
            EntitySpans::Word,
            "word",
            "whole words, clitics inside (ANERCorp, AQMAR)",
        ),
    ];
}

/// Moves each span's start back to the start of its word (letters, digits
/// and combining marks), for [`EntitySpans::Word`]. "l'[Ukraine]" keeps its
/// start: the apostrophe ends the word before it.
pub fn widen_to_words(text: &str, entities: &mut [Entity]) {
    let chars: Vec<char> = text.chars().collect();
    let in_word = |c: char| c.is_alphanumeric() || is_combining_mark(c);
    // Never back into the entity before (spans stay disjoint).
    let mut floor = 0;
    for e in entities.iter_mut() {
        let mut s = e.start as usize;
        while s > floor && s <= chars.len() && in_word(chars[s - 1]) {
            s -= 1;
        }
        floor = e.end as usize;
        if s as u32 != e.start {
            e.start = s as u32;
            e.text = chars[s..e.end as usize].iter().collect();
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tag {
    O,
    B(usize),
    I(usize),
    E(usize),
    S(usize),
}

/// Label scheme of an NER head (IOB1/IOB2/BIO, BIOES/BILOU, or bare IO types).
#[derive(Debug, Clone)]
pub struct NerScheme {
    tags: Vec<Tag>,
    pub types: Vec<String>,
}

impl NerScheme {
    pub fn from_labels(labels: &[String], model: &Path) -> Result<NerScheme> {
        let mut types: Vec<String> = Vec::new();
        let mut ty = |t: &str| -> usize {
            match types.iter().position(|x| x == t) {
                Some(i) => i,
                None => {
                    types.push(t.to_string());
                    types.len() - 1
                }
            }
        };
        let mut tags = Vec::new();
        for l in labels {
            if l == "O" || l.eq_ignore_ascii_case("o") {
                tags.push(Tag::O);
                continue;
            }
            let (prefix, name) = match l.split_once(['-', '_']) {
                Some((p, n)) if p.len() == 1 && !n.is_empty() => (p.to_ascii_uppercase(), n),
                _ if l.chars().all(|c| c.is_alphanumeric()) && !l.is_empty() => ("I".to_string(), l.as_str()),
                _ => {
                    return Err(Error::model(
                        model,
                        format!("unknown NER label `{l}` in id2label: expected O, B-/I-/E-/S-/L-/U-TYPE or a bare type"),
                    ))
                }
            };
            let i = ty(name);
            tags.push(match prefix.as_str() {
                "B" => Tag::B(i),
                "I" => Tag::I(i),
                "E" | "L" => Tag::E(i),
                "S" | "U" => Tag::S(i),
                _ => {
                    return Err(Error::model(
                        model,
                        format!("unknown NER label `{l}` in id2label: the prefix must be B, I, E, S, L or U"),
                    ))
                }
            });
        }
        if !tags.contains(&Tag::O) {
            return Err(Error::model(
                model,
                format!("NER labels {labels:?} have no `O` label"),
            ));
        }
        Ok(NerScheme { tags, types })
    }
}

/// One token of a paragraph with its label probabilities.
#[derive(Debug, Clone)]
pub struct TokenProbs {
    /// Code points in the paragraph.
    pub start: usize,
    pub end: usize,
    pub word: Option<u32>,
    pub probs: Vec<f32>,
}

pub use crate::record::Entity;

struct Word {
    start: usize,
    end: usize,
    probs: Vec<f32>,
}

fn argmax(xs: &[f32]) -> usize {
    let mut best = 0;
    for (i, &x) in xs.iter().enumerate() {
        if x > xs[best] {
            best = i;
        }
    }
    best
}

/// Groups tokens into words by word id; with `sub_tokens` every token stands
/// alone.
fn words(tokens: &[TokenProbs], agg: Aggregation, sub_tokens: bool) -> Vec<Word> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let mut j = i + 1;
        // Tokens with no word id (unusual pre-tokenizers) stand alone.
        while !sub_tokens
            && j < tokens.len()
            && tokens[i].word.is_some()
            && tokens[j].word == tokens[i].word
        {
            j += 1;
        }
        let group = &tokens[i..j];
        let probs: Vec<f32> = match agg {
            Aggregation::First => group[0].probs.clone(),
            Aggregation::Average => {
                mean_rows(&group.iter().map(|t| t.probs.clone()).collect::<Vec<_>>())
            }
            Aggregation::Max => {
                let best = group
                    .iter()
                    .max_by(|a, b| {
                        let ma = a.probs.iter().cloned().fold(f32::MIN, f32::max);
                        let mb = b.probs.iter().cloned().fold(f32::MIN, f32::max);
                        ma.partial_cmp(&mb).unwrap_or(std::cmp::Ordering::Equal)
                    })
                    .expect("group is non-empty");
                best.probs.clone()
            }
        };
        out.push(Word {
            start: group[0].start,
            end: group[group.len() - 1].end,
            probs,
        });
        i = j;
    }
    out
}

impl NerScheme {
    /// The IOB2 labels of `types`: `O`, then `B-T`, `I-T` per type.
    pub fn iob2_labels(types: &[String]) -> Vec<String> {
        std::iter::once("O".to_string())
            .chain(
                types
                    .iter()
                    .flat_map(|t| [format!("B-{t}"), format!("I-{t}")]),
            )
            .collect()
    }

    /// Most probable label sequence under IOB2 constraints: an `I-T` only
    /// follows `B-T` or `I-T`, never `O`, another type, or the start.
    pub fn viterbi(&self, probs: &[Vec<f32>]) -> Vec<usize> {
        let n = self.tags.len();
        let allowed = |prev: Option<usize>, cur: usize| match self.tags[cur] {
            Tag::I(t) => {
                prev.is_some_and(|p| matches!(self.tags[p], Tag::B(u) | Tag::I(u) if u == t))
            }
            _ => true,
        };
        let ln = |p: f32| p.max(1e-12).ln();
        let mut score: Vec<f32> = (0..n)
            .map(|c| {
                if allowed(None, c) {
                    ln(probs.first().map_or(0.0, |p| p[c]))
                } else {
                    f32::NEG_INFINITY
                }
            })
            .collect();
        let mut back: Vec<Vec<usize>> = Vec::with_capacity(probs.len());
        for p in probs.iter().skip(1) {
            let mut next = vec![f32::NEG_INFINITY; n];
            let mut from = vec![0; n];
            for c in 0..n {
                for (q, &sq) in score.iter().enumerate() {
                    if allowed(Some(q), c) && sq > next[c] {
                        next[c] = sq;
                        from[c] = q;
                    }
                }
                next[c] += ln(p[c]);
            }
            back.push(from);
            score = next;
        }
        if probs.is_empty() {
            return vec![];
        }
        let mut path = vec![argmax(&score)];
        for from in back.iter().rev() {
            path.push(from[*path.last().expect("non-empty")]);
        }
        path.reverse();
        path
    }

    /// `(type, first, last)` spans of a label-index sequence (conlleval).
    pub fn spans(&self, labels: &[usize]) -> Vec<(usize, usize, usize)> {
        group_tags(
            labels
                .iter()
                .map(|&l| self.tags.get(l).copied().unwrap_or(Tag::O)),
        )
    }
}

/// Entity spans of one paragraph. Offsets are code points into `text`, and
/// each entity's text is exactly that slice (whitespace and edge punctuation
/// other than '.' are trimmed from the span first).
///
/// `sub_tokens` is how paratag's NER heads are read: each sub-token is its
/// own unit (so a span may start inside a word, "l'[Ukraine]"), the units are
/// decoded by IOB2-constrained Viterbi ([`NerScheme::viterbi`]), and a span
/// that stops inside a word is extended to the word's end. Otherwise (NER
/// models) sub-tokens are aggregated into words by `agg`, each word takes its
/// most probable label, and stray I- tags start entities, as conlleval reads
/// them.
pub fn decode_entities(
    text: &str,
    tokens: &[TokenProbs],
    scheme: &NerScheme,
    agg: Aggregation,
    sub_tokens: bool,
) -> Vec<Entity> {
    let chars: Vec<char> = text.chars().collect();
    let words = words(tokens, agg, sub_tokens);
    let probs: Vec<Vec<f32>> = words.iter().map(|w| w.probs.clone()).collect();
    let labels: Vec<usize> = if sub_tokens {
        scheme.viterbi(&probs)
    } else {
        probs.iter().map(|p| argmax(p)).collect()
    };
    let spans = scheme.spans(&labels).into_iter().map(|(ty, a, b)| {
        let scores: Vec<f32> = (a..=b).map(|w| probs[w][labels[w]]).collect();
        (ty, a, b, scores)
    });

    spans
        .into_iter()
        .filter_map(|(ty, a, b, scores)| {
            let (mut s, mut e) = (
                words[a].start.min(chars.len()),
                words[b].end.min(chars.len()),
            );
            let trim = |c: char| c.is_whitespace() || (is_edge_punct(c));
            while s < e && trim(chars[s]) {
                s += 1;
            }
            while e > s && trim(chars[e - 1]) {
                e -= 1;
            }
            // A sentence's full stop is not part of the name; an abbreviation's is ("U.S.").
            if e > s + 1 && chars[e - 1] == '.' && !chars[s..e - 1].contains(&'.') {
                e -= 1;
            }
            // A normalising tokenizer can align a composed letter to its base
            // only ("e" of "e\u{301}"); the marks belong to the letter.
            while s < e && e < chars.len() && is_combining_mark(chars[e]) {
                e += 1;
            }
            // Sub-token decoding (heads) may stop inside a word ("Bundes" of
            // "Bundesbank"): a span ends where its word ends. Its start stays,
            // so clitics written onto a name ("l'", "و") stay outside.
            while sub_tokens
                && s < e
                && e < chars.len()
                && chars[e - 1].is_alphanumeric()
                && (chars[e].is_alphanumeric() || is_combining_mark(chars[e]))
            {
                e += 1;
            }
            (s < e).then(|| Entity {
                text: chars[s..e].iter().collect(),
                label: scheme.types[ty].clone(),
                start: s as u32,
                end: e as u32,
                score: round(scores.iter().sum::<f32>() / scores.len() as f32),
            })
        })
        .collect()
}

/// Groups word tags into `(type, first word, last word)` with conlleval
/// semantics: an I- that does not continue an entity of its own type starts
/// one, B-/S- always start one, E-/S- end one.
fn group_tags(tags: impl Iterator<Item = Tag>) -> Vec<(usize, usize, usize)> {
    let mut spans = Vec::new();
    let mut cur: Option<(usize, usize, usize)> = None;
    for (wi, tag) in tags.enumerate() {
        let (ty, begins, ends) = match tag {
            Tag::O => {
                spans.extend(cur.take());
                continue;
            }
            Tag::B(t) => (t, true, false),
            Tag::S(t) => (t, true, true),
            Tag::I(t) => (t, false, false),
            Tag::E(t) => (t, false, true),
        };
        match cur.as_mut() {
            Some(c) if !begins && c.0 == ty => c.2 = wi,
            _ => {
                spans.extend(cur.take());
                cur = Some((ty, wi, wi));
            }
        }
        if ends {
            spans.extend(cur.take());
        }
    }
    spans.extend(cur.take());
    spans
}

/// Entity spans `(type, first, last)` (token indices, inclusive) of a tag
/// sequence such as CoNLL/IOB2 gold. `Err` names a tag that is not O or
/// B-/I-/E-/S-/L-/U-TYPE.
pub fn tag_spans(tags: &[&str]) -> std::result::Result<Vec<(String, usize, usize)>, String> {
    let mut types: Vec<String> = Vec::new();
    let mut parsed = Vec::with_capacity(tags.len());
    for t in tags {
        if t.eq_ignore_ascii_case("o") {
            parsed.push(Tag::O);
            continue;
        }
        let (p, name) = t
            .split_once(['-', '_'])
            .filter(|(p, n)| p.len() == 1 && !n.is_empty())
            .ok_or_else(|| format!("tag {t:?} is not O or B-/I-/E-/S-TYPE"))?;
        let i = match types.iter().position(|x| x == name) {
            Some(i) => i,
            None => {
                types.push(name.to_string());
                types.len() - 1
            }
        };
        parsed.push(match p.to_ascii_uppercase().as_str() {
            "B" => Tag::B(i),
            "I" => Tag::I(i),
            "E" | "L" => Tag::E(i),
            "S" | "U" => Tag::S(i),
            _ => return Err(format!("tag {t:?}: the prefix must be B, I, E, S, L or U")),
        });
    }
    Ok(group_tags(parsed.into_iter())
        .into_iter()
        .map(|(ty, a, b)| (types[ty].clone(), a, b))
        .collect())
}

use unicode_normalization::char::is_combining_mark;

fn is_edge_punct(c: char) -> bool {
    c != '.'
        && c != '\''
        && (c.is_ascii_punctuation() || "«»“”„‘’،؛؟…·".contains(c))
        && c != '&'
        && c != '-'
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entity(text: &str, start: usize, end: usize) -> Entity {
        Entity {
            text: text.chars().skip(start).take(end - start).collect(),
            label: "LOC".into(),
            start: start as u32,
            end: end as u32,
            score: 0.9,
        }
    }

    #[test]
    fn word_spans_take_in_the_clitics_written_onto_a_name() {
        // "و[قطر]" (and Qatar), "ب[غزة]" with a fatha (a combining mark) on the
        // clitic, "l'[Ukraine]", a name after an emoji, and one at the start.
        let text = "وقطر بَغزة l'Ukraine 🇺🇦Київ Москва";
        let find = |w: &str| {
            let b = text.find(w).unwrap();
            let s = text[..b].chars().count();
            (s, s + w.chars().count())
        };
        let mut ents: Vec<Entity> = ["قطر", "غزة", "Ukraine", "Київ", "Москва"]
            .iter()
            .map(|w| {
                let (s, e) = find(w);
                entity(text, s, e)
            })
            .collect();
        widen_to_words(text, &mut ents);
        let got: Vec<&str> = ents.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(got, ["وقطر", "بَغزة", "Ukraine", "Київ", "Москва"]);
        for e in &ents {
            let slice: String = text
                .chars()
                .skip(e.start as usize)
                .take((e.end - e.start) as usize)
                .collect();
            assert_eq!(slice, e.text, "an entity's text is its slice");
        }
        assert_eq!(ents[0].start, 0);
        // Two names in one word stay two disjoint spans.
        let text = "NordStream";
        let mut ents = vec![entity(text, 0, 4), entity(text, 4, 10)];
        widen_to_words(text, &mut ents);
        assert_eq!((ents[1].start, ents[1].text.as_str()), (4, "Stream"));
    }

    #[test]
    fn head_spans_end_where_their_word_ends() {
        let s = NerScheme::from_labels(&NerScheme::iob2_labels(&["ORG".into()]), Path::new("m"))
            .unwrap();
        let text = "Die Bundesbank und l'ONU";
        // Sub-tokens: "Die" "Bundes" "bank" "und" "l'" "ONU"; the head marks
        // only "Bundes" (B-ORG) and "ONU".
        let tok = |a: usize, b: usize, p: [f32; 3]| TokenProbs {
            start: a,
            end: b,
            word: None,
            probs: p.to_vec(),
        };
        let (o, b) = ([0.9, 0.05, 0.05], [0.1, 0.8, 0.1]);
        let toks = [
            tok(0, 3, o),
            tok(3, 10, b),
            tok(10, 14, o),
            tok(14, 18, o),
            tok(18, 21, o),
            tok(21, 24, b),
        ];
        let ents = decode_entities(text, &toks, &s, Aggregation::First, true);
        let got: Vec<&str> = ents.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(got, ["Bundesbank", "ONU"]);
        // Without `sub_tokens` (NER models, word-level) nothing is extended.
        let ents = decode_entities(text, &toks, &s, Aggregation::First, false);
        assert_eq!(ents[0].text, "Bundes");
    }

    #[test]
    fn viterbi_never_puts_i_after_o_or_another_type() {
        let s = NerScheme::from_labels(
            &NerScheme::iob2_labels(&["LOC".into(), "PER".into()]),
            Path::new("m"),
        )
        .unwrap();
        // O B-LOC I-LOC B-PER I-PER
        let p = |xs: [f32; 5]| xs.to_vec();
        // Argmax would read O, I-PER, I-PER: a stray I- after O.
        let seq = [
            p([0.9, 0.02, 0.02, 0.03, 0.03]),
            p([0.3, 0.05, 0.05, 0.2, 0.4]),
            p([0.2, 0.05, 0.05, 0.1, 0.6]),
        ];
        let path = s.viterbi(&seq);
        assert_eq!(path, vec![0, 3, 4], "O B-PER I-PER");
        // I-PER after B-LOC is not allowed either: B-LOC then O or B-PER.
        let seq = [p([0.0, 0.9, 0.0, 0.1, 0.0]), p([0.3, 0.0, 0.0, 0.1, 0.6])];
        let path = s.viterbi(&seq);
        assert_eq!(path, vec![1, 0]);
        for w in path.windows(2) {
            let ok = !matches!((s.tags[w[0]], s.tags[w[1]]), (a, Tag::I(t)) if !matches!(a, Tag::B(u) | Tag::I(u) if u == t));
            assert!(ok, "{path:?}");
        }
        assert_eq!(s.spans(&[0, 3, 4, 0, 1]), vec![(1, 1, 2), (0, 4, 4)]);
        assert!(s.viterbi(&[]).is_empty());
    }

    fn labels(xs: &[&str]) -> Vec<String> {
        xs.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tag_spans_follow_conlleval() {
        let t = |xs: &[&str]| tag_spans(xs).unwrap();
        // A split entity: B I O I -> two entities (the stray I- starts one).
        assert_eq!(
            t(&["B-PER", "I-PER", "O", "I-PER"]),
            vec![("PER".into(), 0, 1), ("PER".into(), 3, 3)]
        );
        // B/I type mismatch: I-LOC after B-PER starts a LOC entity.
        assert_eq!(
            t(&["B-PER", "I-LOC", "I-LOC"]),
            vec![("PER".into(), 0, 0), ("LOC".into(), 1, 2)]
        );
        // B- after B- of the same type: two entities.
        assert_eq!(
            t(&["B-ORG", "B-ORG"]),
            vec![("ORG".into(), 0, 0), ("ORG".into(), 1, 1)]
        );
        // BIOES.
        assert_eq!(
            t(&["S-LOC", "B-PER", "E-PER", "O"]),
            vec![("LOC".into(), 0, 0), ("PER".into(), 1, 2)]
        );
        assert!(tag_spans(&["X-PER"]).is_err());
        assert!(tag_spans(&["PER"]).is_err());
    }

    #[test]
    fn nli_label_order_is_read_not_assumed() {
        let p = Path::new("m");
        assert_eq!(
            nli_labels(&labels(&["entailment", "neutral", "contradiction"]), p).unwrap(),
            NliLabels {
                entailment: 0,
                opposite: 2
            }
        );
        assert_eq!(
            nli_labels(&labels(&["CONTRADICTION", "NEUTRAL", "ENTAILMENT"]), p).unwrap(),
            NliLabels {
                entailment: 2,
                opposite: 0
            }
        );
        assert_eq!(
            nli_labels(&labels(&["entailment", "not_entailment"]), p).unwrap(),
            NliLabels {
                entailment: 0,
                opposite: 1
            }
        );
        assert!(nli_labels(&labels(&["LABEL_0", "LABEL_1"]), p).is_err());
    }

    #[test]
    fn single_label_is_softmax_over_entailment() {
        let l = NliLabels {
            entailment: 0,
            opposite: 2,
        };
        let logits = vec![vec![vec![2.0, 0.0, 0.0]], vec![vec![0.0, 0.0, 0.0]]];
        let s = nli_topic_scores(&logits, l, false);
        assert!((s[0] - 0.880797).abs() < 1e-5 && (s[0] + s[1] - 1.0).abs() < 1e-6);
    }

    #[test]
    fn stance_none_below_threshold() {
        assert_eq!(stance_decision(0.7, 0.2, 0.5), ("favor", 0.7));
        assert_eq!(stance_decision(0.1, 0.6, 0.5), ("against", 0.6));
        let (l, s) = stance_decision(0.3, 0.4, 0.5);
        assert_eq!(l, "none");
        assert!((s - 0.6).abs() < 1e-6);
    }

    fn tok(start: usize, end: usize, word: u32, label: usize, n: usize) -> TokenProbs {
        let mut probs = vec![0.0; n];
        probs[label] = 0.9;
        TokenProbs {
            start,
            end,
            word: Some(word),
            probs,
        }
    }

    #[test]
    fn decodes_iob2_and_bioes_with_exact_slices() {
        let text = "قال بوتين، إن Зеленський 👍🏽 في كييف";
        let chars: Vec<char> = text.chars().collect();
        let find = |w: &str| {
            let wc: Vec<char> = w.chars().collect();
            (0..chars.len())
                .find(|&i| chars[i..].starts_with(&wc))
                .unwrap()
        };
        let iob = NerScheme::from_labels(
            &labels(&["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]),
            Path::new("m"),
        )
        .unwrap();
        let b = find("بوتين،");
        let z = find("Зеленський");
        let k = find("كييف");
        let toks = vec![
            tok(0, 3, 0, 0, 5),
            tok(b, b + 3, 1, 1, 5),
            tok(b + 3, b + 6, 1, 2, 5), // sub-token, label ignored under "first"
            tok(z, z + 10, 3, 1, 5),
            tok(z + 11, z + 13, 4, 2, 5), // emoji continues the person: I-PER
            tok(k, k + 4, 6, 3, 5),
        ];
        let ents = decode_entities(text, &toks, &iob, Aggregation::First, false);
        let got: Vec<(&str, &str)> = ents
            .iter()
            .map(|e| (e.text.as_str(), e.label.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![("بوتين", "PER"), ("Зеленський 👍🏽", "PER"), ("كييف", "LOC")]
        );
        for e in &ents {
            let slice: String = chars[e.start as usize..e.end as usize].iter().collect();
            assert_eq!(slice, e.text);
        }

        let bioes =
            NerScheme::from_labels(&labels(&["O", "S-LOC", "B-ORG", "E-ORG"]), Path::new("m"))
                .unwrap();
        let t = "NATO and Kyiv";
        let toks = vec![tok(0, 4, 0, 2, 4), tok(5, 8, 1, 3, 4), tok(9, 13, 2, 1, 4)];
        let ents = decode_entities(t, &toks, &bioes, Aggregation::First, false);
        assert_eq!(ents.len(), 2);
        assert_eq!(
            (ents[0].text.as_str(), ents[0].label.as_str()),
            ("NATO and", "ORG")
        );
        assert_eq!(
            (ents[1].text.as_str(), ents[1].label.as_str()),
            ("Kyiv", "LOC")
        );
    }

    #[test]
    fn combining_marks_stay_with_their_letter() {
        // A normalising tokenizer may end the token "cafe\u{301}" before the mark.
        let iob = NerScheme::from_labels(&labels(&["O", "B-LOC"]), Path::new("m")).unwrap();
        let t = "cafe\u{301} Zu\u{308}rich";
        let toks = vec![tok(0, 4, 0, 1, 2), tok(6, 8, 1, 1, 2), tok(9, 13, 2, 0, 2)];
        let ents = decode_entities(t, &toks, &iob, Aggregation::First, false);
        let got: Vec<&str> = ents.iter().map(|e| e.text.as_str()).collect();
        assert_eq!(got, vec!["cafe\u{301}", "Zu\u{308}"]);
        assert_eq!((ents[0].start, ents[0].end), (0, 5));
    }

    #[test]
    fn unknown_scheme_is_an_error() {
        let e = NerScheme::from_labels(&labels(&["O", "X-PER"]), Path::new("m")).unwrap_err();
        assert!(e.to_string().contains("X-PER"), "{e}");
        assert!(NerScheme::from_labels(&labels(&["B-PER", "I-PER"]), Path::new("m")).is_err());
    }
}
