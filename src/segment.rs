//! Paragraph segmentation with boilerplate removal.
//!
//! Scraped news pages carry menus, "follow us" lines, story lists, comment
//! headers and lists of unrelated headlines around the article body. The rules,
//! in order (each documented in the README):
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
//! Offsets are Unicode code points into the article text, and each paragraph's
//! text is exactly `article[start..end]`.

use std::collections::HashMap;

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

fn units(text: &str) -> Vec<Unit> {
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

/// Lines that repeat across the corpus, counted once per article.
#[derive(Debug, Default, Clone)]
pub struct RepeatIndex {
    counts: HashMap<String, usize>,
    articles: usize,
}

impl RepeatIndex {
    pub fn build<'a>(texts: impl Iterator<Item = &'a str>) -> RepeatIndex {
        let mut idx = RepeatIndex::default();
        for t in texts {
            idx.articles += 1;
            let mut seen = std::collections::HashSet::new();
            for u in units(t) {
                let k = repeat_key(&t[u.bytes.0..u.bytes.1]);
                if !k.is_empty() && seen.insert(k.clone()) {
                    *idx.counts.entry(k).or_default() += 1;
                }
            }
        }
        idx
    }

    fn is_repeated(&self, key: &str, cfg: &SegmentConfig) -> bool {
        let n = self.counts.get(key).copied().unwrap_or(0);
        n >= cfg.repeat_min_articles && n * 5 >= self.articles
    }
}

pub fn segment(text: &str, repeats: &RepeatIndex, cfg: &SegmentConfig) -> Segmented {
    if !cfg.split {
        return whole(text);
    }
    let units = units(text);
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
        if repeats.is_repeated(&repeat_key(s), cfg)
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

    let mut out = Segmented::default();
    // Byte -> code point conversion in one forward pass.
    let mut cp = CharCursor::new(text);
    for (u, k) in units.iter().zip(&keep) {
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
        segment(t, &RepeatIndex::default(), &SegmentConfig::default())
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
        let s = segment("  مباشر\nقصير  ", &RepeatIndex::default(), &cfg);
        assert_eq!(
            s.paragraphs,
            vec![Paragraph {
                start: 2,
                end: 12,
                text: "مباشر\nقصير".into()
            }]
        );
        assert!(segment(" \n ", &RepeatIndex::default(), &cfg)
            .paragraphs
            .is_empty());
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
        let idx = RepeatIndex::build(arts.iter().map(|s| s.as_str()));
        let s = segment(&arts[0], &idx, &SegmentConfig::default());
        assert_eq!(s.paragraphs.len(), 1);
        assert!(s.paragraphs[0].text.starts_with("Article 0"));
    }
}
