//! Paragraph segmentation with boilerplate removal.
//!
//! Scraped news pages carry menus, "follow us" lines, story lists, comment
//! headers and lists of unrelated headlines around the article body. The rules,
//! in order (each documented in docs/architecture.md):
//!
//! 1. Units are lines; a hard-wrapped line (50+ characters, no final
//!    punctuation) is joined with the next line of the same block unless that
//!    line starts with a capital letter.
//! 2. A unit that repeats in at least [`SegmentConfig::repeat_min_articles`]
//!    articles and a fifth of the corpus is dropped (site chrome).
//! 3. A short unit (< `short_chars` characters) with no sentence punctuation
//!    is dropped (menu items, bylines, "مباشر").
//! 4. A run of `headline_run` or more consecutive unpunctuated units is dropped
//!    (story lists), however long each one is.
//! 5. A comments / related-stories marker in the second half of the page drops
//!    itself and everything after it.
//!
//! An HTML page's article comes out of [`crate::extract`] already in
//! paragraphs, from the page's structure; it is split at its blank lines
//! only, and of the rules above only the repeats apply.
//!
//! Repeats are counted twice: across the corpus (rule 2), and per site (a
//! record's URL host, or an HTML page's folder). A unit found in at least
//! `repeat_min_articles` pages of one site, and in a tenth of that site's
//! pages, is that site's template (share prompts, subscription notes,
//! standing credits) and is dropped from all of them. A site's own standard
//! sentence that recurs in a few of its stories stays.
//!
//! Offsets are Unicode code points into the article text, and each paragraph's
//! text is exactly `article[start..end]`.

use std::collections::{HashMap, HashSet};

#[derive(Debug, Clone)]
pub struct SegmentConfig {
    pub short_chars: usize,
    pub headline_run: usize,
    pub repeat_min_articles: usize,
    /// Off: each text is one paragraph (trimmed), for inputs that are
    /// already paragraphs or sentences.
    pub split: bool,
}

impl Default for SegmentConfig {
    fn default() -> Self {
        SegmentConfig {
            short_chars: 60,
            headline_run: 3,
            repeat_min_articles: 3,
            split: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Paragraph {
    /// Code-point offsets into the article text.
    pub start: usize,
    pub end: usize,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Segmented {
    pub paragraphs: Vec<Paragraph>,
    /// Non-blank lines dropped as boilerplate.
    pub dropped_lines: usize,
}

/// A candidate unit: one line, or hard-wrapped lines joined.
#[derive(Debug, Clone)]
struct Unit {
    /// Byte range into the article text (trimmed).
    bytes: (usize, usize),
    lines: usize,
}

const SENTENCE_END: &[char] = &[
    '.', '!', '?', '؟', '。', '…', '۔', '"', '»', '”', ')', ':', ';',
];
const SENTENCE_PUNCT: &[char] = &['.', '!', '?', '؟', '。', '…', '۔', ',', '،', ';', '؛', ':'];

/// Section markers after which a page holds comments or unrelated stories.
const TAIL_MARKERS: &[&str] = &[
    "التعليقات",
    "تعليقات",
    "اقرأ أيضا",
    "اقرأ أيضاً",
    "مواضيع ذات صلة",
    "الأكثر قراءة",
    "comments",
    "related stories",
    "related articles",
    "read more",
    "most read",
    "more stories",
    "комментарии",
    "читайте также",
    "коментарі",
    "читайте також",
    "commentaires",
    "à lire aussi",
    "lire aussi",
    "kommentare",
    "mehr zum thema",
    "das könnte sie auch interessieren",
    "comentarios",
    "lee también",
    "te puede interesar",
];

/// The units of a text: lines (hard-wrapped ones joined), or for an
/// extracted article, its paragraphs (one per line, never joined).
fn units(text: &str, extracted: bool) -> Vec<Unit> {
    if extracted {
        return lines(text);
    }
    let mut out: Vec<Unit> = Vec::new();
    let mut pos = 0usize;
    let mut joinable = false;
    for raw in text.split_inclusive('\n') {
        let line_start = pos;
        pos += raw.len();
        let content = raw.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim();
        if trimmed.is_empty() {
            joinable = false;
            continue;
        }
        let lead = content.len() - content.trim_start().len();
        let s = line_start + lead;
        let e = s + trimmed.len();
        // A hard-wrapped line continues on a line that does not start a new
        // capitalised item (headline lists are capitalised, one per line).
        let continues = joinable && !trimmed.starts_with(char::is_uppercase);
        if continues {
            let last = out.last_mut().expect("joinable implies a unit");
            last.bytes.1 = e;
            last.lines += 1;
        } else {
            out.push(Unit {
                bytes: (s, e),
                lines: 1,
            });
        }
        // Hard wrap: a long line that stops mid-sentence continues on the next line.
        joinable = trimmed.chars().count() >= 50 && !ends_sentence(trimmed);
    }
    out
}

fn ends_sentence(s: &str) -> bool {
    s.trim_end().ends_with(SENTENCE_END)
}

fn has_punct(s: &str) -> bool {
    s.contains(SENTENCE_PUNCT)
}

/// Normalised key for repeat detection: lowercase, whitespace folded.
fn repeat_key(s: &str) -> String {
    s.split_whitespace()
        .map(|w| w.to_lowercase())
        .collect::<Vec<_>>()
        .join(" ")
}

fn is_tail_marker(s: &str) -> bool {
    let k = s
        .trim_matches(|c: char| {
            c.is_whitespace() || c.is_ascii_punctuation() || c.is_numeric() || "()[]:：".contains(c)
        })
        .to_lowercase();
    TAIL_MARKERS.iter().any(|m| k == *m)
}

/// Its non-blank lines, trimmed, each a unit.
fn lines(text: &str) -> Vec<Unit> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    for raw in text.split_inclusive('\n') {
        let line_start = pos;
        pos += raw.len();
        let content = raw.trim_end_matches(['\n', '\r']);
        let trimmed = content.trim();
        if !trimmed.is_empty() {
            let s = line_start + (content.len() - content.trim_start().len());
            out.push(Unit {
                bytes: (s, s + trimmed.len()),
                lines: 1,
            });
        }
    }
    out
}

/// Site-level keys have the top bit set, corpus-level keys clear.
const SITE_BIT: u64 = 1 << 63;

/// The corpus-level repeat key of a unit: a hash of its normalised text.
fn unit_hash(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(repeat_key(s).as_bytes()) & !SITE_BIT
}

/// The site-level repeat key of a unit.
fn site_unit_hash(site: &str, s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(repeat_key(s).as_bytes(), site_seed(site)) | SITE_BIT
}

/// The key that counts a site's pages (no unit hashes to it but by chance).
fn site_pages_key(site: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(b"\0pages\0", site_seed(site)) | SITE_BIT
}

fn site_seed(site: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(site.as_bytes())
}

/// The distinct repeat keys of an article's units, sorted: corpus-level,
/// and with a site, site-level and the site's page counter.
pub fn repeat_keys(text: &str, site: Option<&str>, extracted: bool) -> Vec<u64> {
    let units: Vec<&str> = units(text, extracted)
        .iter()
        .map(|u| &text[u.bytes.0..u.bytes.1])
        .filter(|s| !repeat_key(s).is_empty())
        .collect();
    let mut keys: Vec<u64> = units.iter().map(|s| unit_hash(s)).collect();
    if let Some(site) = site {
        keys.extend(units.iter().map(|s| site_unit_hash(site, s)));
        keys.push(site_pages_key(site));
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Units that repeat across the corpus (rule 2), as the set of their keys,
/// and per site, with their page counts.
#[derive(Debug, Default, Clone)]
pub struct RepeatIndex {
    repeated: HashSet<u64>,
    /// Site-level keys seen in `repeat_min_articles` pages or more, and
    /// the page counts of those sites.
    site: HashMap<u64, usize>,
    min_articles: usize,
}

/// One article as segmentation sees it.
#[derive(Debug, Clone)]
pub struct Source<'a> {
    pub text: &'a str,
    /// Where it comes from, for site-level repeats.
    pub site: Option<String>,
    /// An extracted HTML article: paragraphs, one per line.
    pub extracted: bool,
}

impl<'a> Source<'a> {
    /// Plain text from no particular site.
    pub fn plain(text: &'a str) -> Source<'a> {
        Source {
            text,
            site: None,
            extracted: false,
        }
    }
}

impl RepeatIndex {
    /// From per-article counts over `articles` articles.
    pub fn from_counts(
        counts: impl IntoIterator<Item = (u64, usize)>,
        articles: usize,
        cfg: &SegmentConfig,
    ) -> RepeatIndex {
        let min = cfg.repeat_min_articles;
        let (mut repeated, mut site) = (HashSet::new(), HashMap::new());
        for (k, n) in counts {
            if k & SITE_BIT != 0 {
                if n >= min {
                    site.insert(k, n);
                }
            } else if n >= min && n * 5 >= articles {
                repeated.insert(k);
            }
        }
        RepeatIndex {
            repeated,
            site,
            min_articles: min,
        }
    }

    /// Exact counts over `sources`, held in memory (tests, small inputs).
    pub fn build<'a>(
        sources: impl Iterator<Item = Source<'a>>,
        cfg: &SegmentConfig,
    ) -> RepeatIndex {
        let mut counts: HashMap<u64, usize> = HashMap::new();
        let mut articles = 0;
        for s in sources {
            articles += 1;
            for k in repeat_keys(s.text, s.site.as_deref(), s.extracted) {
                *counts.entry(k).or_default() += 1;
            }
        }
        Self::from_counts(counts, articles, cfg)
    }

    /// Units repeated across the corpus, and site-level units counted in
    /// enough pages (whether their share of the site's pages is enough is
    /// decided per site).
    pub fn len(&self) -> usize {
        self.repeated.len() + self.site.len()
    }

    pub fn is_empty(&self) -> bool {
        self.repeated.is_empty() && self.site.is_empty()
    }

    fn is_repeated(&self, unit: &str, site: Option<&str>) -> bool {
        if !self.repeated.is_empty() && self.repeated.contains(&unit_hash(unit)) {
            return true;
        }
        let Some(site) = site.filter(|_| !self.site.is_empty()) else {
            return false;
        };
        let n = self
            .site
            .get(&site_unit_hash(site, unit))
            .copied()
            .unwrap_or(0);
        let pages = self.site.get(&site_pages_key(site)).copied().unwrap_or(0);
        n >= self.min_articles.max(1) && n * 10 >= pages
    }
}

/// Per-article counts of repeat keys in bounded memory: a Misra–Gries
/// summary of at most `cap` keys. Every key counted in more than
/// `stream / (cap + 1)` articles is kept (`stream` is the number of keys
/// added); counts are exact until the first eviction, lower bounds after.
#[derive(Debug, Clone)]
pub struct RepeatCounter {
    counts: HashMap<u64, u32>,
    cap: usize,
    evicted: bool,
    pub articles: usize,
    pub stream: u64,
}

impl RepeatCounter {
    pub fn new(cap: usize) -> RepeatCounter {
        RepeatCounter {
            counts: HashMap::new(),
            cap: cap.max(1),
            evicted: false,
            articles: 0,
            stream: 0,
        }
    }

    /// One article's distinct keys.
    pub fn add(&mut self, keys: &[u64]) {
        self.articles += 1;
        for &k in keys {
            self.stream += 1;
            if let Some(c) = self.counts.get_mut(&k) {
                *c += 1;
            } else if self.counts.len() < self.cap {
                self.counts.insert(k, 1);
            } else {
                // Decrement every counter (the new key's implicit 1 included).
                self.evicted = true;
                self.counts.retain(|_, c| {
                    *c -= 1;
                    *c > 0
                });
            }
        }
    }

    /// True when no key was ever evicted, so the counts are exact.
    pub fn is_exact(&self) -> bool {
        !self.evicted
    }

    /// The keys held: a superset of the repeated ones, if the summary was
    /// big enough (see [`RepeatCounter::covers`]).
    pub fn keys(&self) -> HashSet<u64> {
        self.counts.keys().copied().collect()
    }

    /// Whether every key at or above the repeat threshold is guaranteed
    /// to be held.
    pub fn covers(&self, cfg: &SegmentConfig) -> bool {
        let threshold = (cfg.repeat_min_articles as u64).max(self.articles.div_ceil(5) as u64);
        self.is_exact() || self.stream / (self.cap as u64 + 1) < threshold
    }

    pub fn counts(&self) -> impl Iterator<Item = (u64, usize)> + '_ {
        self.counts.iter().map(|(&k, &c)| (k, c as usize))
    }
}

pub fn segment(src: Source, repeats: &RepeatIndex, cfg: &SegmentConfig) -> Segmented {
    let Source {
        text,
        site,
        extracted,
    } = src;
    let site = site.as_deref();
    if !cfg.split {
        return whole(text);
    }
    let units = units(text, extracted);
    if extracted {
        let keep: Vec<bool> = units
            .iter()
            .map(|u| !repeats.is_repeated(&text[u.bytes.0..u.bytes.1], site))
            .collect();
        return kept(text, &units, &keep);
    }
    let n = units.len();
    let mut keep = vec![true; n];
    let body = |u: &Unit| &text[u.bytes.0..u.bytes.1];

    // Rule 5 first: everything from a late tail marker on is dropped.
    let total_bytes = text.len().max(1);
    let mut tail_from = n;
    for (i, u) in units.iter().enumerate() {
        if u.bytes.0 * 2 >= total_bytes && is_tail_marker(body(u)) {
            tail_from = i;
            break;
        }
    }
    for k in keep.iter_mut().skip(tail_from) {
        *k = false;
    }

    let unpunctuated: Vec<bool> = units.iter().map(|u| !ends_sentence(body(u))).collect();
    for i in 0..tail_from {
        let s = body(&units[i]);
        let chars = s.chars().count();
        if repeats.is_repeated(s, site)
            || (chars < cfg.short_chars && !has_punct(s))
            || is_tail_marker(s)
        {
            keep[i] = false;
        }
    }
    // Rule 4: runs of headline-like units.
    let mut i = 0;
    while i < tail_from {
        if unpunctuated[i] {
            let mut j = i;
            let mut lines = 0;
            while j < tail_from && unpunctuated[j] {
                lines += units[j].lines;
                j += 1;
            }
            if lines >= cfg.headline_run {
                for k in keep.iter_mut().take(j).skip(i) {
                    *k = false;
                }
            }
            i = j;
        } else {
            i += 1;
        }
    }

    kept(text, &units, &keep)
}

/// The kept units as paragraphs; the others counted as dropped lines.
fn kept(text: &str, units: &[Unit], keep: &[bool]) -> Segmented {
    let mut out = Segmented::default();
    // Byte -> code point conversion in one forward pass.
    let mut cp = CharCursor::new(text);
    for (u, k) in units.iter().zip(keep) {
        if *k {
            let start = cp.char_at(u.bytes.0);
            let end = cp.char_at(u.bytes.1);
            out.paragraphs.push(Paragraph {
                start,
                end,
                text: text[u.bytes.0..u.bytes.1].to_string(),
            });
        } else {
            out.dropped_lines += u.lines;
        }
    }
    out
}

/// The trimmed text as one paragraph (none if it is blank).
fn whole(text: &str) -> Segmented {
    let t = text.trim();
    if t.is_empty() {
        return Segmented::default();
    }
    let lead = text.len() - text.trim_start().len();
    let mut cp = CharCursor::new(text);
    let start = cp.char_at(lead);
    let end = cp.char_at(lead + t.len());
    Segmented {
        paragraphs: vec![Paragraph {
            start,
            end,
            text: t.to_string(),
        }],
        dropped_lines: 0,
    }
}

/// Converts increasing byte offsets to code-point offsets.
struct CharCursor<'a> {
    text: &'a str,
    byte: usize,
    chars: usize,
}

impl<'a> CharCursor<'a> {
    fn new(text: &'a str) -> Self {
        CharCursor {
            text,
            byte: 0,
            chars: 0,
        }
    }
    fn char_at(&mut self, byte: usize) -> usize {
        debug_assert!(byte >= self.byte);
        self.chars += self.text[self.byte..byte].chars().count();
        self.byte = byte;
        self.chars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(t: &str) -> Segmented {
        segment(
            Source::plain(t),
            &RepeatIndex::default(),
            &SegmentConfig::default(),
        )
    }

    #[test]
    fn offsets_are_code_points_and_slices() {
        let t = "مباشر\n\nقال الوزير إن المساعدات ستصل إلى كييف الأسبوع المقبل، وفق بيان رسمي.\n\n👍🏽 Привет, мир! Это длинный абзац о переговорах в Женеве.";
        let s = seg(t);
        assert_eq!(s.dropped_lines, 1);
        assert_eq!(s.paragraphs.len(), 2);
        let chars: Vec<char> = t.chars().collect();
        for p in &s.paragraphs {
            let slice: String = chars[p.start..p.end].iter().collect();
            assert_eq!(slice, p.text);
        }
    }

    #[test]
    fn no_split_keeps_the_whole_text() {
        let cfg = SegmentConfig {
            split: false,
            ..Default::default()
        };
        let s = segment(
            Source::plain("  مباشر\nقصير  "),
            &RepeatIndex::default(),
            &cfg,
        );
        assert_eq!(
            s.paragraphs,
            vec![Paragraph {
                start: 2,
                end: 12,
                text: "مباشر\nقصير".into()
            }]
        );
        assert!(
            segment(Source::plain(" \n "), &RepeatIndex::default(), &cfg)
                .paragraphs
                .is_empty()
        );
    }

    #[test]
    fn joins_hard_wrapped_lines() {
        let t = "This is a long line of a plain text article that was wrapped\nat seventy columns by the newsroom's export tool.\n\nNext paragraph here, short.";
        let s = seg(t);
        assert_eq!(s.paragraphs.len(), 2, "{s:?}");
        assert!(s.paragraphs[0].text.contains('\n'));
    }

    #[test]
    fn drops_headline_runs_and_tail() {
        let body =
            "The parliament voted on Tuesday to approve a new package of support, officials said.";
        let t = format!(
            "{body}\nUkraine war latest news from the front line today in the east\nMarkets slide as oil prices rise sharply amid tensions in the Gulf\nElection results announced in the capital after a long count\n{body}\n{body}\nComments\nSomething long enough to be a paragraph, with punctuation."
        );
        let s = seg(&t);
        assert_eq!(s.paragraphs.len(), 3, "{s:?}");
        assert_eq!(s.dropped_lines, 5);
    }

    #[test]
    fn repeated_lines_across_articles_are_dropped() {
        let chrome = "Follow us on Telegram, X and Facebook for the latest updates.";
        let arts: Vec<String> = (0..4)
            .map(|i| format!("{chrome}\nArticle {i} body sentence that is long enough, with punctuation and detail."))
            .collect();
        let idx = RepeatIndex::build(
            arts.iter().map(|s| Source::plain(s)),
            &SegmentConfig::default(),
        );
        let s = segment(Source::plain(&arts[0]), &idx, &SegmentConfig::default());
        assert_eq!(s.paragraphs.len(), 1);
        assert!(s.paragraphs[0].text.starts_with("Article 0"));
    }

    /// The bounded counter finds the same repeated lines as exact counting,
    /// even when it has to evict: the chrome line is in every article, the
    /// article bodies are all different.
    #[test]
    fn bounded_counter_keeps_the_repeated_lines() {
        let cfg = SegmentConfig::default();
        let chrome = "Follow us on Telegram, X and Facebook for the latest updates.";
        let arts: Vec<String> = (0..200)
            .map(|i| {
                format!("{chrome}\nBody {i} of the article.\nAnother line {i}, here.\nThird {i}.")
            })
            .collect();
        let exact = RepeatIndex::build(arts.iter().map(|s| Source::plain(s)), &cfg);
        assert_eq!(exact.len(), 1);
        let mut c = RepeatCounter::new(32);
        for a in &arts {
            c.add(&repeat_keys(a, None, false));
        }
        assert!(!c.is_exact(), "32 slots for 601 distinct keys must evict");
        assert!(c.covers(&cfg));
        assert!(c.keys().contains(&unit_hash(chrome)));
        // The scan recounts the held keys exactly; the index is the same.
        let held = c.keys();
        let mut counts: HashMap<u64, usize> = HashMap::new();
        for a in &arts {
            for k in repeat_keys(a, None, false)
                .into_iter()
                .filter(|k| held.contains(k))
            {
                *counts.entry(k).or_default() += 1;
            }
        }
        let bounded = RepeatIndex::from_counts(counts, arts.len(), &cfg);
        assert_eq!(bounded.repeated, exact.repeated);
    }
}
