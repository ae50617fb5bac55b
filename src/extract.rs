//! HTML page → article: its paragraphs in reading order, and its metadata.
//!
//! A page's structure says more about what is article than its text does,
//! so this stage reads the DOM (html5ever, through `dom_query`), not a text
//! dump of it. The cascade (docs/architecture.md tells it at length):
//!
//! 1. **Repairs:** React-streamed content is moved into its placeholders,
//!    and cookie-consent dialogs are removed.
//! 2. **Readability** (`dom_smoothie`, a maintained port of Mozilla's
//!    Readability.js) scores the page's blocks by text and link density,
//!    tag and class/id names, and picks the article's container. On the
//!    development pages it beat the other candidates we measured, including
//!    two Rust ports of trafilatura (measured while choosing; not kept in the
//!    benchmarks). Of several sibling
//!    `<article>`s (an endless scroll), the first is the article.
//! 3. **Paragraphs** are read from that container in document order: every
//!    block element starts a paragraph; a table row becomes one paragraph of
//!    its cells joined by `" | "`; inline markup is dropped and whitespace
//!    folded. Page furniture (comment threads, hidden elements, ads, figures,
//!    controls, newsletter and promo boxes, bylines) is skipped by tag, ARIA
//!    role and `class`/`id` words, and teasers, labels and the short lines
//!    at the article's edges are dropped.
//! 4. **Fallbacks:** where the JSON-LD `articleBody` holds much more text,
//!    the page's blocks in it (or that text itself); where Readability finds
//!    nothing, the first container named like an article body with at least
//!    [`MIN_BODY_CHARS`] characters; else the whole `<body>`.
//!
//! Metadata comes from JSON-LD, OpenGraph and `<meta>` tags (title, date,
//! author, site name), and the canonical URL from `<link rel=canonical>`,
//! `og:url` or JSON-LD. Boilerplate that repeats across a site's pages is
//! the segmenter's job, which sees the whole corpus.
//!
//! This file depends on nothing else in the crate, so the extraction
//! harness can build it alone.

use dom_query::{Document, NodeRef};

/// A body container found by name must hold this many characters of text.
pub const MIN_BODY_CHARS: usize = 250;

/// Elements nested deeper than this lose their tags (not their text).
pub const MAX_NESTING: usize = 256;

/// An article extracted from a page.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Page {
    /// Paragraphs in reading order: trimmed, whitespace folded, never empty.
    pub paragraphs: Vec<String>,
    pub meta: Meta,
}

/// What a page says about itself; `None` where it does not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Meta {
    pub title: Option<String>,
    /// Publication date as the page gives it (ISO 8601 on most sites).
    pub published: Option<String>,
    pub author: Option<String>,
    /// The site's name (`og:site_name`, JSON-LD publisher).
    pub site: Option<String>,
    /// Canonical URL.
    pub url: Option<String>,
}

/// Extracts the article of an HTML page. Never fails: a page with no text
/// gives no paragraphs.
pub fn extract(html: &str) -> Page {
    let parse = || {
        let doc = Document::from(limit_nesting(html).as_ref());
        place_streamed_content(&doc);
        remove_overlays(&doc);
        doc
    };
    let doc = parse();
    let canonical = canonical_url(&doc);
    let ld_body = json_ld_body(&doc);
    let fallback = || {
        let doc = parse();
        body_container(&doc).unwrap_or_else(|| paragraphs(&doc.root()))
    };
    let cfg = dom_smoothie::Config {
        // Classes and ids are what the discard rules read.
        keep_classes: true,
        ..Default::default()
    };
    let parsed = dom_smoothie::Readability::with_document(doc, None, Some(cfg))
        .ok()
        .and_then(|mut r| r.parse().ok());
    let Some(article) = parsed else {
        return Page {
            paragraphs: fallback(),
            meta: Meta {
                url: canonical,
                ..Meta::default()
            },
        };
    };
    let content = Document::from(article.content.as_ref());
    let mut paras = paragraphs(&first_of_several(&content).unwrap_or(content.root()));
    if paras.is_empty() {
        paras = fallback();
    }
    if let Some(body) = ld_body {
        paras = guided_by(paras, &body, || blocks(&parse().root()));
    }
    let some = |s: Option<String>| s.map(|s| fold(&s)).filter(|s| !s.is_empty());
    Page {
        paragraphs: paras,
        meta: Meta {
            title: some(Some(article.title)),
            published: some(article.published_time),
            author: some(article.byline),
            site: some(article.site_name),
            url: canonical.or_else(|| some(article.url)),
        },
    }
}

/// Where the container holds several `<article>`s of text (an endless
/// scroll appends the next stories to the page), the first.
fn first_of_several(content: &Document) -> Option<NodeRef<'_>> {
    let articles: Vec<(NodeRef, usize)> = content
        .select("article")
        .nodes()
        .iter()
        .map(|a| (*a, a.text().len()))
        .filter(|(_, len)| *len >= MIN_BODY_CHARS)
        .collect();
    // Only sibling stories, not an article's own nested parts.
    let nested = articles.iter().any(|(a, _)| {
        a.ancestors_it(None)
            .any(|p| p.node_name().is_some_and(|n| &*n == "article"))
    });
    // The first must be a story of its own, not a summary before the body.
    let (first, first_len) = *articles.first()?;
    let longest = articles.iter().skip(1).map(|(_, len)| *len).max()?;
    (!nested && first_len * 2 >= longest).then_some(first)
}

/// The article's text as the page's JSON-LD gives it (`articleBody`).
fn json_ld_body(doc: &Document) -> Option<String> {
    fn find(v: &serde_json::Value) -> Option<&str> {
        match v {
            serde_json::Value::Object(m) => m
                .get("articleBody")
                .and_then(|b| b.as_str())
                .or_else(|| m.values().find_map(find)),
            serde_json::Value::Array(a) => a.iter().find_map(find),
            _ => None,
        }
    }
    doc.select("script[type='application/ld+json']")
        .nodes()
        .iter()
        .filter_map(|s| serde_json::from_str::<serde_json::Value>(&s.text()).ok())
        .find_map(|v| find(&v).map(str::to_string))
        .filter(|b| !b.trim().is_empty())
}

/// Where the page's JSON-LD holds much more article text than Readability
/// found (it took one part of a page split into several, or a teaser), the
/// page's blocks whose words are in that text, in page order. The JSON-LD
/// text says what is article; the page says where its paragraphs break.
fn guided_by(
    found: Vec<String>,
    body: &str,
    page: impl Fn() -> Vec<(String, Kind)>,
) -> Vec<String> {
    let words = |t: &str| t.split_whitespace().count();
    let body_words = words(body);
    let found_words: usize = found.iter().map(|p| words(p)).sum();
    if found_words * 10 >= body_words * LD_ENOUGH_TENTHS {
        return found;
    }
    let vocab: std::collections::HashSet<&str> = body.split_whitespace().collect();
    let mut seen = std::collections::HashSet::new();
    let guided: Vec<String> = page()
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| {
            let w: Vec<&str> = t.split_whitespace().collect();
            let inside = w.iter().filter(|w| vocab.contains(*w)).count();
            inside * 10 >= w.len() * 9 && seen.insert(t.clone())
        })
        .collect();
    let guided_words: usize = guided.iter().map(|p| words(p)).sum();
    let best = if guided_words > found_words {
        guided
    } else {
        found
    };
    if best.iter().map(|p| words(p)).sum::<usize>() * 2 >= body_words {
        return best;
    }
    // The page does not show the article (a paywall, a script renders it):
    // the JSON-LD text itself, in its own lines.
    body.lines().map(fold).filter(|l| !l.is_empty()).collect()
}

/// Readability's text is enough if it has this many tenths of the JSON-LD
/// article's words.
const LD_ENOUGH_TENTHS: usize = 7;

/// The host of a URL, lower-cased, without `www.`; `None` when it has none.
pub fn host(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next()?;
    let host = authority.rsplit('@').next()?.split(':').next()?;
    let host = host.trim_start_matches("www.").to_lowercase();
    (!host.is_empty() && url.contains("://")).then_some(host)
}

/// React's streamed server rendering (Next.js) sends a page's content in
/// hidden `<div id="S:n">` blocks at the end of the body, which a script
/// moves into the placeholders `<template id="B:n">` (or `"P:n"`). No script runs here,
/// so this does the move: otherwise the article is hidden, or missing.
fn place_streamed_content(doc: &Document) {
    for div in doc.select("div[hidden][id^='S:']").nodes() {
        let Some(n) = div
            .attr("id")
            .and_then(|id| id.strip_prefix("S:").map(str::to_string))
        else {
            continue;
        };
        // `B:n` holds a boundary's content, `P:n` a segment's.
        let slot = doc.select(&format!("template[id='B:{n}'], template[id='P:{n}']"));
        if let Some(slot) = slot.nodes().first() {
            div.remove_attr("hidden");
            slot.replace_with(div);
        }
    }
}

/// Cookie-consent dialogs, removed before Readability scores the page: they
/// are long runs of sentences, and Readability can take one for the
/// article.
fn remove_overlays(doc: &Document) {
    // The page's text length, measured only when a dialog is found.
    let mut total = None;
    for el in doc
        .select("div, section, aside, form, dialog, ol, ul")
        .nodes()
    {
        let names = names_of(el);
        // Whole names: WordPress tags a recipe post `tag-cookie-recipes`.
        if !names
            .split_whitespace()
            .any(|n| OVERLAY.iter().any(|w| n.starts_with(w)))
        {
            continue;
        }
        // Never the page's main body, whatever its class says. (Measured
        // before the first removal, as the page came.)
        let total = *total.get_or_insert_with(|| doc.root().text().len().max(1));
        if el.text().len() * 2 < total {
            el.remove_from_parent();
        }
    }
}

/// An element's `id` and `class`, lower-cased, space-separated.
fn names_of(el: &NodeRef) -> String {
    let attr = |a: &str| el.attr(a).map(|s| s.to_lowercase()).unwrap_or_default();
    format!("{} {}", attr("id"), attr("class"))
}

/// How the `class` or `id` of a consent dialog starts.
const OVERLAY: &[&str] = &[
    "cookie",
    "consent",
    "onetrust",
    "ot-sdk",
    "gdpr",
    "didomi",
    "usercentrics",
];

fn canonical_url(doc: &Document) -> Option<String> {
    let attr = |sel: &str, name: &str| {
        doc.select(sel)
            .attr(name)
            .map(|s| s.trim().to_string())
            .filter(|s| s.contains("://"))
    };
    attr("link[rel=canonical]", "href")
        .or_else(|| attr("meta[property=\"og:url\"]", "content"))
        .or_else(|| attr("meta[name=\"og:url\"]", "content"))
}

// ------------------------------------------------------------- paragraphs --

/// Elements that start a paragraph of their own.
const BLOCK: &[&str] = &[
    "p",
    "div",
    "section",
    "article",
    "main",
    "header",
    "footer",
    "aside",
    "nav",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "ul",
    "ol",
    "li",
    "dl",
    "dt",
    "dd",
    "blockquote",
    "pre",
    "figure",
    "figcaption",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "caption",
    "address",
    "form",
    "fieldset",
    "details",
    "summary",
    "hr",
    "center",
    "body",
    "html",
];

/// Elements whose content is never article text.
const SKIP: &[&str] = &[
    "script",
    "style",
    "nav",
    "aside",
    "noscript",
    "template",
    "svg",
    "button",
    "select",
    "textarea",
    "iframe",
    "head",
    "title",
    "object",
    "embed",
    "canvas",
    "input",
    "figure",
    "figcaption",
];

/// Classes that hide an element (CSS frameworks' names for it).
const HIDDEN_CLASSES: &[&str] = &[
    "hidden",
    "hide",
    "is-hidden",
    "visually-hidden",
    "visuallyhidden",
    "sr-only",
    "screen-reader-text",
    "d-none",
];

/// Words in a `class` or `id` that mark page furniture.
const FURNITURE: &[&str] = &[
    "footer",
    "sidebar",
    "newsletter",
    "promo",
    "byline",
    "timestamp",
    "published-date",
    "author-bio",
    "authorbio",
    "author-info",
];

/// What a block is, for the trim at the article's edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Heading,
    Row,
    Item,
}

/// Blocks accumulated while walking a subtree.
#[derive(Default)]
struct Text {
    out: Vec<(String, Kind)>,
    cur: String,
    /// Bytes of `cur` inside links, and whether the walk is in one.
    link_bytes: usize,
    in_link: bool,
    in_heading: bool,
    in_item: bool,
}

impl Text {
    fn push(&mut self, t: &str) {
        let before = self.cur.len();
        for (i, w) in t.split(char::is_whitespace).enumerate() {
            if i > 0 {
                self.space();
            }
            self.cur.push_str(w);
        }
        if self.in_link {
            self.link_bytes += self.cur.len() - before;
        }
    }
    fn space(&mut self) {
        if !self.cur.is_empty() && !self.cur.ends_with(' ') {
            self.cur.push(' ');
        }
    }
    fn end(&mut self) {
        let t = self.cur.trim();
        // A short paragraph that is all link is a teaser or a menu entry
        // ("Read more: ...", "Related: ..."), not the article's text.
        let teaser = self.link_bytes * 10 >= t.len() * TEASER_LINK_TENTHS
            && t.chars().count() < TEASER_CHARS;
        if !t.is_empty() && !teaser {
            let kind = if self.in_heading {
                Kind::Heading
            } else if self.in_item {
                Kind::Item
            } else {
                Kind::Text
            };
            self.out.push((t.to_string(), kind));
        }
        self.cur.clear();
        self.link_bytes = 0;
    }
}

/// A paragraph with this many tenths of its text in links, and shorter
/// than [`TEASER_CHARS`], is a teaser.
const TEASER_LINK_TENTHS: usize = 9;
const TEASER_CHARS: usize = 150;

/// A paragraph this long, or ending a sentence, is article text for the
/// edge trim.
const GOOD_CHARS: usize = 80;

/// The paragraphs under `root`, in document order, less the page furniture
/// at the article's edges: short lines without a sentence's end (menus,
/// headline lists, "Home", "Comments") before its first and after its last
/// real paragraph. Headings and table rows at the start stay.
fn paragraphs(root: &NodeRef) -> Vec<String> {
    let mut blocks = blocks(root);
    drop_labels(&mut blocks);
    let good = |(t, k): &(String, Kind)| {
        matches!(k, Kind::Text | Kind::Item)
            && (t.chars().count() >= GOOD_CHARS || ends_sentence(t))
    };
    let (Some(first), Some(last)) = (blocks.iter().position(good), blocks.iter().rposition(good))
    else {
        return blocks.into_iter().map(|(t, _)| t).collect();
    };
    blocks
        .into_iter()
        .enumerate()
        .filter(|(i, (_, k))| (first..=last).contains(i) || (*i < first && *k != Kind::Item))
        .map(|(_, (t, _))| t)
        .collect()
}

/// Drops the lines that label page furniture rather than say anything:
/// lines with no letter (`0`, `|`, `•`), advertisement markers
/// ("Advertisement", "Story continues below", "Anzeige", "Реклама"), and
/// short lines that recur three times or more in the page ("Article
/// content" between every paragraph). Table rows stay.
fn drop_labels(blocks: &mut Vec<(String, Kind)>) {
    let key = |t: &str| {
        t.chars()
            .map(|c| {
                if c.is_alphabetic() {
                    c.to_lowercase().next().unwrap_or(c)
                } else {
                    ' '
                }
            })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (t, _) in blocks.iter() {
        if t.chars().count() < LABEL_CHARS {
            *counts.entry(key(t)).or_default() += 1;
        }
    }
    blocks.retain(|(t, k)| {
        if *k == Kind::Row {
            return true;
        }
        let k = key(t);
        !(k.is_empty()
            || AD_MARKERS.contains(&k.as_str())
            || (t.chars().count() < LABEL_CHARS && counts.get(&k).is_some_and(|&n| n >= 3)))
    });
}

/// A label is shorter than this.
const LABEL_CHARS: usize = 60;

/// Advertisement markers, lower-cased, letters only.
const AD_MARKERS: &[&str] = &[
    "advertisement",
    "advertisement story continues below",
    "story continues below",
    "story continues below advertisement",
    "article continues below",
    "continue reading below",
    "sponsored",
    "ad",
    "anzeige",
    "werbung",
    "publicité",
    "publicidad",
    "pubblicità",
    "reklam",
    "reklama",
    "реклама",
    "реклама партнеров",
    "إعلان",
    "اعلان",
];

fn ends_sentence(t: &str) -> bool {
    t.trim_end_matches(['"', '\'', '»', '”', ')'])
        .ends_with(['.', '!', '?', '؟', '。', '…', '۔'])
}

/// The blocks under `root`, in document order.
fn blocks(root: &NodeRef) -> Vec<(String, Kind)> {
    let mut t = Text::default();
    walk(root, &mut t);
    t.end();
    t.out
}

fn walk(n: &NodeRef, t: &mut Text) {
    for c in n.children_it(false) {
        if c.is_text() {
            t.push(&c.text());
            continue;
        }
        if !c.is_element() {
            continue;
        }
        let name = c
            .node_name()
            .map(|s| s.to_ascii_lowercase())
            .unwrap_or_default();
        let name = name.as_str();
        if SKIP.contains(&name) || is_furniture(&c, name) {
            continue;
        }
        match name {
            "br" => t.space(),
            "a" => {
                let outer = std::mem::replace(&mut t.in_link, true);
                walk(&c, t);
                t.in_link = outer;
            }
            "tr" => {
                t.end();
                let cells: Vec<String> = c
                    .children_it(false)
                    .filter(|x| x.is_element())
                    .map(|cell| {
                        let b = blocks(&cell);
                        b.into_iter().map(|(t, _)| t).collect::<Vec<_>>().join(" ")
                    })
                    .filter(|s| !s.is_empty())
                    .collect();
                if !cells.is_empty() {
                    t.out.push((cells.join(" | "), Kind::Row));
                }
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                t.end();
                let outer = std::mem::replace(&mut t.in_heading, true);
                walk(&c, t);
                t.end();
                t.in_heading = outer;
            }
            "li" | "dd" | "dt" => {
                t.end();
                let outer = std::mem::replace(&mut t.in_item, true);
                walk(&c, t);
                t.end();
                t.in_item = outer;
            }
            _ if BLOCK.contains(&name) => {
                t.end();
                walk(&c, t);
                t.end();
            }
            _ => walk(&c, t),
        }
    }
}

/// ARIA roles of controls and page regions that are not the article.
fn is_control_role(c: &NodeRef) -> bool {
    c.attr("role").is_some_and(|r| {
        matches!(
            r.to_ascii_lowercase().as_str(),
            "button"
                | "navigation"
                | "menu"
                | "menubar"
                | "toolbar"
                | "dialog"
                | "alertdialog"
                | "search"
                | "tablist"
                | "banner"
                | "contentinfo"
        )
    })
}

/// A class that hides the element (screen-reader-only and the like) or
/// marks an ad slot.
fn hidden_or_ad_class(c: &NodeRef) -> bool {
    let class = c
        .attr("class")
        .map(|s| s.to_lowercase())
        .unwrap_or_default();
    // `hidden md:block` (Tailwind) is hidden on phones only.
    let shown_somewhere = class.split_whitespace().any(|w| {
        w.rsplit_once(':').is_some_and(|(_, d)| {
            matches!(
                d,
                "block" | "flex" | "inline" | "inline-block" | "grid" | "table" | "contents"
            )
        })
    });
    class.split_whitespace().any(|w| {
        (HIDDEN_CLASSES.contains(&w) && !shown_somewhere)
            || matches!(w, "ad" | "ads" | "advert" | "advertisement" | "adsbygoogle")
            || ["ad__", "ad-", "ads-", "ads__", "advert"]
                .iter()
                .any(|p| w.starts_with(p))
    })
}

/// Hidden elements, comment threads and boxes whose `class`/`id` names
/// them page furniture.
fn is_furniture(c: &NodeRef, name: &str) -> bool {
    let style = c
        .attr("style")
        .map(|s| s.to_ascii_lowercase().replace(' ', ""))
        .unwrap_or_default();
    if is_control_role(c) {
        return true;
    }
    if style.contains("display:none")
        || c.has_attr("hidden")
        || c.attr("aria-hidden").is_some_and(|v| &*v == "true")
    {
        return true;
    }
    if hidden_or_ad_class(c) && !matches!(name, "body" | "html" | "main" | "article") {
        return true;
    }
    if !matches!(
        name,
        "div"
            | "section"
            | "aside"
            | "ul"
            | "ol"
            | "dl"
            | "li"
            | "dd"
            | "dt"
            | "p"
            | "span"
            | "footer"
            | "form"
            | "details"
    ) {
        return false;
    }
    let names = names_of(c);
    // By whole names: a `commentary` is an article.
    let comments = names.split_whitespace().any(|w| {
        (w.contains("comment") && !w.contains("commentar"))
            || matches!(w, "respond" | "replies")
            || w.starts_with("disqus")
            || w.starts_with("dsq-")
    });
    comments || FURNITURE.iter().any(|w| names.contains(w))
}

// ------------------------------------------------------- body by its name --

/// The first container whose name marks an article body (trafilatura's
/// rules, strongest first) that holds [`MIN_BODY_CHARS`] characters.
fn body_container(doc: &Document) -> Option<Vec<String>> {
    let all: Vec<NodeRef> = doc
        .root()
        .descendants_it()
        .filter(|n| n.is_element())
        .collect();
    for level in 0..5 {
        if let Some(c) = all.iter().find(|c| names_body(level, c)) {
            let paras = paragraphs(c);
            if paras.iter().map(|p| p.chars().count()).sum::<usize>() >= MIN_BODY_CHARS {
                return Some(paras);
            }
        }
    }
    None
}

/// Class and id words that name an article's body, by trafilatura's
/// selector levels: its first (class or id), third (class) and fourth
/// (class or id).
const BODY_NAMES: [&[&str]; 3] = [
    &[
        "post-text",
        "post_text",
        "post-body",
        "post-entry",
        "post-content",
        "post_content",
        "article-text",
        "entry-content",
        "article-content",
        "article__content",
        "article-body",
        "article__body",
        "body-text",
        "text-content",
        "art-content",
    ],
    &[
        "post-bodycopy",
        "storycontent",
        "story-content",
        "blog-content",
        "single-content",
        "single-post",
        "main-column",
        "story-body",
        "field-body",
    ],
    &[
        "content-main",
        "content_main",
        "content-body",
        "content__body",
    ],
];

/// Whether `c` is the body trafilatura's selector `level` (0-4) names.
fn names_body(level: usize, c: &NodeRef) -> bool {
    let name = c
        .node_name()
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    let attr = |a: &str| c.attr(a).map(|s| s.to_string()).unwrap_or_default();
    let (class, id) = (attr("class"), attr("id"));
    let (lclass, lid) = (class.to_lowercase(), id.to_lowercase());
    let either = |s: &str| class.contains(s) || id.contains(s);
    let container = matches!(name.as_str(), "article" | "div" | "main" | "section");
    match level {
        0 => {
            container
                && (matches!(class.as_str(), "post" | "entry")
                    || attr("itemprop") == "articleBody"
                    || BODY_NAMES[0].iter().any(|s| either(s))
                    || ["postcontent", "articletext", "articlebody", "postentry"]
                        .iter()
                        .any(|s| lclass.contains(s) || lid.contains(s)))
        }
        1 => name == "article",
        2 => {
            container
                && (BODY_NAMES[1].iter().any(|s| class.contains(s))
                    || id == "story"
                    || id == "article"
                    || class == "story"
                    || class == "text"
                    || class.starts_with("article")
                    || lclass.contains("fulltext")
                    || attr("role") == "article")
        }
        3 => {
            container
                && (BODY_NAMES[2].iter().any(|s| either(s))
                    || lclass.contains("main-content")
                    || lid.contains("main-content")
                    || id == "content"
                    || class == "content")
        }
        _ => {
            name == "main"
                || (container
                    && (class.starts_with("main")
                        || id.starts_with("main")
                        || attr("role").starts_with("main")))
        }
    }
}

/// Folds runs of whitespace to one space and trims.
fn fold(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------- nesting --

/// Elements that never hold others.
const VOID: &[&str] = &[
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source",
    "track", "wbr",
];

/// Drops the tags of elements nested deeper than [`MAX_NESTING`]: the HTML
/// parser's work grows with the square of the depth (100,000 nested `<div>`s
/// took minutes), the walk above recurses, and no real page nests that deep.
pub fn limit_nesting(html: &str) -> std::borrow::Cow<'_, str> {
    let b = html.as_bytes();
    let find = |from: usize, pat: &[u8]| {
        b[from.min(b.len())..]
            .windows(pat.len())
            .position(|w| w.eq_ignore_ascii_case(pat))
            .map(|p| from + p)
    };
    let mut out = String::new();
    let (mut last, mut i, mut depth) = (0, 0, 0usize);
    while let Some(off) = b[i..].iter().position(|&c| c == b'<') {
        let s = i + off;
        if b[s..].starts_with(b"<!--") {
            i = find(s + 4, b"-->").map_or(b.len(), |e| e + 3);
            continue;
        }
        let closing = b.get(s + 1) == Some(&b'/');
        let name_start = s + 1 + usize::from(closing);
        let name_len = b[name_start.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric())
            .count();
        if name_len == 0 {
            i = s + 1;
            continue;
        }
        let name = html[name_start..name_start + name_len].to_ascii_lowercase();
        // The tag ends at the first `>` outside quotes.
        let mut j = name_start + name_len;
        let mut quote = None;
        while j < b.len() {
            match (quote, b[j]) {
                (None, q @ (b'"' | b'\'')) => quote = Some(q),
                (Some(q), c) if c == q => quote = None,
                (None, b'>') => break,
                _ => {}
            }
            j += 1;
        }
        let end = (j + 1).min(b.len());
        let self_closing = end >= 2 && b[end - 2] == b'/';
        let drop = if closing {
            let deep = depth > MAX_NESTING;
            depth = depth.saturating_sub(1);
            deep
        } else if VOID.contains(&name.as_str()) || self_closing {
            false
        } else {
            depth += 1;
            depth > MAX_NESTING
        };
        if drop {
            out.push_str(&html[last..s]);
            last = end;
        }
        i = end;
        if !closing && (name == "script" || name == "style") {
            // Their content is not markup.
            let close = format!("</{name}");
            i = find(i, close.as_bytes()).unwrap_or(b.len());
        }
    }
    if last == 0 {
        return html.into();
    }
    out.push_str(&html[last..]);
    out.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An endless-scroll page holds the next stories after the first: the
    /// page's article is the first.
    #[test]
    fn an_endless_scroll_page_gives_its_first_story() {
        let story = |n: usize| {
            let p: String = (0..4)
                .map(|i| format!("<p>Story {n}, paragraph {i}: the parliament debated the aid package for hours, and the vote was close.</p>"))
                .collect();
            format!("<article><h2>Story {n}</h2>{p}</article>")
        };
        let page = format!(
            "<html><head><title>Story 1</title></head><body><main>{}{}{}</main></body></html>",
            story(1),
            story(2),
            story(3)
        );
        let got = extract(&page).paragraphs;
        assert!(
            got.iter().any(|p| p.starts_with("Story 1, paragraph 3")),
            "{got:?}"
        );
        assert!(
            got.iter()
                .all(|p| !p.contains("Story 2") && !p.contains("Story 3")),
            "{got:?}"
        );
    }

    #[test]
    fn deep_nesting_keeps_its_text_and_stays_linear() {
        let n = 100_000;
        let html = format!(
            "<html><body>{}<p title=\"a > b\">The parliament approved new aid, officials said.</p>{}<script>if (a<b) {{}}</script></body></html>",
            "<div>".repeat(n),
            "</div>".repeat(n)
        );
        // What the parser gets nests at most MAX_NESTING deep.
        let limited = limit_nesting(&html);
        assert_eq!(
            limited.matches("<div>").count(),
            MAX_NESTING - 2,
            "html and body count"
        );
        assert!(limited.contains("if (a<b)"), "script content is not markup");
        let text = extract(&html).paragraphs.join("\n");
        assert!(
            text.contains("The parliament approved new aid, officials said."),
            "{text:?}"
        );
        assert!(!text.contains("if (a<b)"));
        // Ordinary pages are left as they are.
        let page = "<div><p>One, two.</p><br/><img src=x></div>";
        assert!(matches!(limit_nesting(page), std::borrow::Cow::Borrowed(_)));
    }
}
