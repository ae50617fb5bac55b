//! The scan: what a job must know about the whole corpus before it tags any
//! of it, learned by streaming the inputs once in bounded memory.
//!
//! - every bad row (an error, or listed with `--skip-bad-rows`) and every
//!   duplicate id (an error, or dropped with `--dedupe`), before any model runs;
//! - the pass-through columns and their types, so every window of the output
//!   has one schema;
//! - the cross-article repeat index (segmentation rule 2), counted in a
//!   Misra–Gries summary of [`REPEAT_SLOTS`] keys;
//! - how many articles there are (in this shard), for progress.
//!
//! Duplicate ids are found with a Bloom filter of [`BLOOM_BITS`] bits; with
//! `--limit N` an exact set of the N ids is used instead. When the filter
//! reports a possible repeat, or the repeat summary had to evict a key, a
//! second streaming pass settles both exactly: it holds only the candidate
//! ids and the summary's keys. So memory is bounded by those two structures
//! (about 20 MB), not by the corpus, and the result is the exact one. The one
//! approximation: a line is missed by the repeat index only if the corpus
//! averages more than `REPEAT_SLOTS / 5` (13,107) distinct lines per article;
//! the scan warns when that bound is crossed.

use crate::error::{Error, Result};
use crate::input::{InputFile, Inputs, Item, PassColumn, PassSchema, Record};
use crate::segment::{self, RepeatCounter, RepeatIndex, SegmentConfig};
use crate::shard::Shard;
use rayon::prelude::*;
use std::collections::{HashMap, HashSet};

/// Keys held by the repeat summary.
pub const REPEAT_SLOTS: usize = 65_536;
/// Bits of the duplicate-id Bloom filter (16 MiB).
pub const BLOOM_BITS: usize = 1 << 27;
/// Skipped rows listed in the summary (all are reported as they are found).
pub const LISTED_SKIPS: usize = 1000;

#[derive(Debug)]
pub struct Scan {
    pub schema: Vec<PassColumn>,
    pub repeats: RepeatIndex,
    pub inputs: Vec<InputFile>,
    /// Positions of the rows `--dedupe` drops. A position counts the records
    /// read so far, bad rows excluded.
    pub dropped: HashSet<u64>,
    /// Records from this position on are not read (`--limit`).
    pub end: Option<u64>,
    /// Articles kept in the whole corpus, and in this job's shard.
    pub articles: usize,
    pub shard_articles: usize,
    /// The first [`LISTED_SKIPS`] rows skipped by `--skip-bad-rows`.
    pub skipped_rows: Vec<String>,
    pub skipped: usize,
    pub deduped: usize,
    /// 1, or 2 when the exact second pass ran.
    pub passes: u8,
}

/// Sizes of the bounded structures (tests shrink them to force pass 2).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub repeat_slots: usize,
    pub bloom_bits: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            repeat_slots: REPEAT_SLOTS,
            bloom_bits: BLOOM_BITS,
        }
    }
}

enum Seen {
    New,
    Again(String),
    Maybe,
}

/// Duplicate-id detection.
enum Ids {
    /// id -> origin of its first occurrence (with `--limit`, bounded by it).
    Exact(HashMap<String, String>),
    Bloom(fastbloom::BloomFilter, HashSet<String>),
}

impl Ids {
    fn see(&mut self, r: &Record) -> Seen {
        match self {
            Ids::Exact(m) => match m.get(&r.id) {
                Some(first) => Seen::Again(first.clone()),
                None => {
                    m.insert(r.id.clone(), r.origin.clone());
                    Seen::New
                }
            },
            Ids::Bloom(f, candidates) => {
                if f.contains(&r.id) {
                    candidates.insert(r.id.clone());
                    Seen::Maybe
                } else {
                    f.insert(&r.id);
                    Seen::New
                }
            }
        }
    }
}

fn duplicate(r: &Record, first: &str) -> Error {
    Error::input(
        r.origin.clone(),
        format!(
            "duplicate article id `{}` (first seen at {first}); use --dedupe to keep the first",
            crate::text::cut(&r.id)
        ),
    )
}

/// Records in chunks, for parallel key hashing.
const CHUNK: usize = 512;

/// Scans the inputs. `report` receives each skipped row as it is found.
pub fn scan(
    inputs: &Inputs,
    seg: &SegmentConfig,
    shard: Option<Shard>,
    report: &(dyn Fn(&str) + Sync),
) -> Result<Scan> {
    scan_with(inputs, seg, shard, report, Limits::default())
}

pub fn scan_with(
    inputs: &Inputs,
    seg: &SegmentConfig,
    shard: Option<Shard>,
    report: &(dyn Fn(&str) + Sync),
    limits: Limits,
) -> Result<Scan> {
    for note in inputs.notes()? {
        report(&note);
    }
    let (fingerprints, first) = rayon::join(
        || inputs.fingerprints(),
        || first_pass(inputs, seg, shard, report, &limits),
    );
    let (mut s, counter, candidates) = first?;
    s.inputs = fingerprints?;
    if !counter.covers(seg) {
        report(&format!(
            "warning: the corpus averages more than {} distinct lines per article, so the repeat index may miss some repeated lines",
            limits.repeat_slots / 5
        ));
    }
    if candidates.is_empty() && counter.is_exact() {
        s.repeats = RepeatIndex::from_counts(counter.counts(), s.articles, seg);
        return Ok(s);
    }
    second_pass(inputs, seg, shard, &mut s, &counter, &candidates)?;
    Ok(s)
}

impl Scan {
    fn empty() -> Scan {
        Scan {
            schema: vec![],
            repeats: RepeatIndex::default(),
            inputs: vec![],
            dropped: HashSet::new(),
            end: None,
            articles: 0,
            shard_articles: 0,
            skipped_rows: vec![],
            skipped: 0,
            deduped: 0,
            passes: 1,
        }
    }

    /// A row that could not be read: an error, or with `--skip-bad-rows`
    /// reported, counted and (the first few) listed.
    fn skip(
        &mut self,
        location: String,
        message: String,
        allowed: bool,
        report: &(dyn Fn(&str) + Sync),
    ) -> Result<()> {
        if !allowed {
            return Err(Error::input(location, message));
        }
        let line = format!("{location}: {message}");
        report(&format!("skipped {line}"));
        self.skipped += 1;
        if self.skipped_rows.len() < LISTED_SKIPS {
            self.skipped_rows.push(line);
        }
        Ok(())
    }
}

/// What the first pass found: the scan so far, the repeat counts, and the
/// ids the Bloom filter may have seen twice (checked by the second pass).
type FirstPass = (Scan, RepeatCounter, HashSet<String>);

/// Pass 1: bad rows, duplicate ids, the pass-through schema, and repeat
/// keys counted in chunks.
fn first_pass(
    inputs: &Inputs,
    seg: &SegmentConfig,
    shard: Option<Shard>,
    report: &(dyn Fn(&str) + Sync),
    limits: &Limits,
) -> Result<FirstPass> {
    let opts = inputs.options();
    let mut ids = match opts.limit {
        Some(_) => Ids::Exact(HashMap::new()),
        None => Ids::Bloom(
            fastbloom::BloomFilter::with_num_bits(limits.bloom_bits).hashes(7),
            HashSet::new(),
        ),
    };
    let mut counter = RepeatCounter::new(limits.repeat_slots);
    let mut schema = PassSchema::default();
    let mut s = Scan::empty();
    let mut maybe = false;
    let mut position = 0u64;
    let mut chunk: Vec<Record> = Vec::with_capacity(CHUNK);
    let flush = |chunk: &mut Vec<Record>, counter: &mut RepeatCounter| {
        if seg.split {
            let keys: Vec<Vec<u64>> = chunk.par_iter().map(keys).collect();
            for k in &keys {
                counter.add(k);
            }
        } else {
            counter.articles += chunk.len();
        }
        chunk.clear();
    };
    for item in inputs.records() {
        let r = match item? {
            Item::Bad { location, message } => {
                s.skip(location, message, opts.skip_bad_rows, report)?;
                continue;
            }
            Item::Record(r) => r,
        };
        if opts.limit.is_some_and(|l| s.articles >= l) {
            s.end = Some(position);
            break;
        }
        let at = position;
        position += 1;
        match ids.see(&r) {
            Seen::New => {}
            Seen::Maybe => maybe = true,
            Seen::Again(_) if opts.dedupe => {
                s.dropped.insert(at);
                s.deduped += 1;
                continue;
            }
            Seen::Again(first) => return Err(duplicate(&r, &first)),
        }
        s.articles += 1;
        if shard.is_none_or(|sh| sh.contains(&r.id)) {
            s.shard_articles += 1;
        }
        schema.see(&r);
        chunk.push(r);
        if chunk.len() == CHUNK {
            flush(&mut chunk, &mut counter);
        }
    }
    flush(&mut chunk, &mut counter);
    s.schema = schema.columns();
    let candidates = match ids {
        Ids::Bloom(_, c) if maybe => c,
        _ => HashSet::new(),
    };
    Ok((s, counter, candidates))
}

/// A record's repeat keys.
fn keys(r: &Record) -> Vec<u64> {
    segment::repeat_keys(&r.text, r.site().as_deref(), r.extracted)
}

/// Settles candidate duplicates and recounts the held repeat keys exactly.
fn second_pass(
    inputs: &Inputs,
    seg: &SegmentConfig,
    shard: Option<Shard>,
    s: &mut Scan,
    counter: &RepeatCounter,
    candidates: &HashSet<String>,
) -> Result<()> {
    let opts = inputs.options();
    let held = counter.keys();
    let mut first: HashMap<&str, String> = HashMap::new();
    let mut counts: HashMap<u64, usize> = HashMap::new();
    let (mut articles, mut in_shard) = (0, 0);
    let mut chunk: Vec<Record> = Vec::with_capacity(CHUNK);
    let flush = |chunk: &mut Vec<Record>, counts: &mut HashMap<u64, usize>| {
        if seg.split {
            let keys: Vec<Vec<u64>> = chunk
                .par_iter()
                .map(|r| {
                    let mut k = keys(r);
                    k.retain(|k| held.contains(k));
                    k
                })
                .collect();
            for k in keys.into_iter().flatten() {
                *counts.entry(k).or_default() += 1;
            }
        }
        chunk.clear();
    };
    let mut position = 0u64;
    for item in inputs.records() {
        let Item::Record(r) = item? else { continue };
        if s.end.is_some_and(|e| position >= e) {
            break;
        }
        let at = position;
        position += 1;
        if s.dropped.contains(&at) {
            continue;
        }
        if let Some(c) = candidates.get(&r.id) {
            match first.get(c.as_str()) {
                Some(_) if opts.dedupe => {
                    s.dropped.insert(at);
                    s.deduped += 1;
                    continue;
                }
                Some(f) => return Err(duplicate(&r, f)),
                None => {
                    first.insert(c.as_str(), r.origin.clone());
                }
            }
        }
        articles += 1;
        if shard.is_none_or(|sh| sh.contains(&r.id)) {
            in_shard += 1;
        }
        chunk.push(r);
        if chunk.len() == CHUNK {
            flush(&mut chunk, &mut counts);
        }
    }
    flush(&mut chunk, &mut counts);
    s.articles = articles;
    s.shard_articles = in_shard;
    s.repeats = RepeatIndex::from_counts(counts, articles, seg);
    s.passes = 2;
    Ok(())
}

impl Scan {
    /// The records the job tags, in reading order, each with its ordinal
    /// among the kept articles of this shard: bad rows, `--dedupe` drops,
    /// rows past `--limit` and other shards' articles left out.
    pub fn kept<'a>(
        &'a self,
        inputs: &'a Inputs,
        shard: Option<Shard>,
    ) -> impl Iterator<Item = Result<(u64, Record)>> + 'a {
        let mut position = 0u64;
        let mut ordinal = 0u64;
        inputs
            .records()
            .map_while(move |item| {
                let r = match item {
                    Err(e) => return Some(Some(Err(e))),
                    Ok(Item::Bad { .. }) => return Some(None),
                    Ok(Item::Record(r)) => r,
                };
                if self.end.is_some_and(|e| position >= e) {
                    return None;
                }
                let at = position;
                position += 1;
                if self.dropped.contains(&at) || !shard.is_none_or(|sh| sh.contains(&r.id)) {
                    return Some(None);
                }
                ordinal += 1;
                Some(Some(Ok((ordinal - 1, r))))
            })
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::ReadOptions;

    fn corpus(dir: &std::path::Path, rows: &[(&str, &str)]) -> std::path::PathBuf {
        let p = dir.join("c.jsonl");
        let body: String = rows
            .iter()
            .map(|(id, t)| serde_json::json!({"id": id, "text": t}).to_string() + "\n")
            .collect();
        std::fs::write(&p, body).unwrap();
        p
    }

    /// Tiny structures force the second pass; its result equals the exact one.
    #[test]
    fn bounded_scan_equals_exact_scan() {
        let d = tempfile::tempdir().unwrap();
        let chrome = "Follow us on Telegram for the latest updates.";
        let texts: Vec<String> = (0..60)
            .map(|i| {
                format!("{chrome}\nStory {i} begins here, with detail.\nMore of story {i}, still.")
            })
            .collect();
        let mut rows: Vec<(String, &str)> = texts
            .iter()
            .enumerate()
            .map(|(i, t)| (format!("a{i}"), t.as_str()))
            .collect();
        rows.push(("a3".into(), "A duplicate of a3, dropped with --dedupe."));
        let refs: Vec<(&str, &str)> = rows.iter().map(|(a, b)| (a.as_str(), *b)).collect();
        let p = corpus(d.path(), &refs);
        let opts = ReadOptions {
            dedupe: true,
            ..Default::default()
        };
        let inputs = Inputs::open(&[p], &opts).unwrap();
        let seg = SegmentConfig::default();
        let quiet = |_: &str| {};
        let big = scan(&inputs, &seg, None, &quiet).unwrap();
        let small = scan_with(
            &inputs,
            &seg,
            None,
            &quiet,
            Limits {
                repeat_slots: 8,
                bloom_bits: 64,
            },
        )
        .unwrap();
        assert_eq!(small.passes, 2);
        assert_eq!(big.articles, 60);
        assert_eq!(big.deduped, 1);
        for s in [&big, &small] {
            assert_eq!(s.articles, 60);
            assert_eq!(s.dropped, [60u64].into_iter().collect());
            assert_eq!(s.repeats.len(), 1, "only the chrome line repeats");
        }
        let ids: Vec<String> = small.kept(&inputs, None).map(|r| r.unwrap().1.id).collect();
        assert_eq!(ids.len(), 60);
        // Without --dedupe the duplicate is an error naming both lines.
        let inputs = Inputs::open(&[d.path().join("c.jsonl")], &ReadOptions::default()).unwrap();
        for limits in [
            Limits::default(),
            Limits {
                repeat_slots: 8,
                bloom_bits: 64,
            },
        ] {
            let e = scan_with(&inputs, &seg, None, &quiet, limits)
                .unwrap_err()
                .to_string();
            assert!(e.contains("c.jsonl:61") && e.contains("c.jsonl:4"), "{e}");
        }
    }
}
