//! Property tests for the readers and the segmenter on hostile input: any
//! Unicode (RTL and zero-width marks, combining marks, NUL, emoji, lone
//! surrogates in JSON escapes), arbitrary HTML, garbage lines. Whatever the
//! input: no panic, every row read or reported, and every kept paragraph's
//! text is the article's code-point slice `[start, end)`.
//!
//! A short seeded run is part of `cargo test`; `scripts/proptest.sh` runs a
//! million cases (`PARATAG_PROPTEST_CASES`, `PARATAG_PROPTEST_SEED`). A case
//! that ever failed stays below as a named regression test.

use paratag::input::{html_to_text, Inputs, Item, ReadOptions};
use paratag::segment::{segment, RepeatIndex, SegmentConfig, Source};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    Config {
        cases: env("PARATAG_PROPTEST_CASES", 48) as u32,
        rng_seed: RngSeed::Fixed(env("PARATAG_PROPTEST_SEED", 1)),
        failure_persistence: None,
        ..Config::default()
    }
}

/// Pieces of hostile text.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<char>().prop_map(String::from),
        Just("\n".to_string()),
        Just("\r\n".to_string()),
        Just("\n\n".to_string()),
        Just(" ".to_string()),
        Just("\u{200f}\u{202e}\u{200b}\u{200d}\u{feff}\u{2066}".to_string()), // RTL, zero-width, isolates
        Just("e\u{301}\u{302}".to_string()), // stacked combining marks
        Just("\u{64b}\u{651}".to_string()),  // Arabic harakat alone
        Just("\0".to_string()),
        Just("👍🏽🇺🇦👨‍👩‍👧".to_string()),
        Just(". ".to_string()),
        Just("؟ ".to_string()),
        Just("قال الوزير إن المساعدات ستصل إلى كييف الأسبوع المقبل، وفق بيان رسمي.".to_string()),
        Just(
            "Министр заявил, что переговоры продолжатся в Женеве на следующей неделе.".to_string()
        ),
        Just(
            "The parliament approved new military aid to Ukraine on Tuesday, officials said."
                .to_string()
        ),
        Just("Comments".to_string()),
        Just("Follow us on Telegram".to_string()),
        "[a-zA-Z ]{1,80}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..60).prop_map(|v| v.concat())
}

/// Checks every paragraph of `article` against its slice.
fn check_segments(src: Source, repeats: &RepeatIndex, split: bool) -> Result<(), TestCaseError> {
    let cfg = SegmentConfig {
        split,
        ..Default::default()
    };
    let article = src.text;
    let s = segment(src.clone(), repeats, &cfg);
    let chars: Vec<char> = article.chars().collect();
    let mut prev_end = 0;
    for p in &s.paragraphs {
        prop_assert!(p.start < p.end && p.end <= chars.len(), "{p:?}");
        prop_assert!(
            p.start >= prev_end,
            "paragraphs overlap: {:?}",
            s.paragraphs
        );
        let slice: String = chars[p.start..p.end].iter().collect();
        prop_assert_eq!(&slice, &p.text);
        prop_assert_eq!(p.text.trim(), p.text.as_str());
        prev_end = p.end;
    }
    Ok(())
}

/// A file in a fresh folder, read back through the job's reader.
fn read_file(name: &str, bytes: &[u8]) -> Vec<Item> {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join(name);
    std::fs::write(&p, bytes).unwrap();
    let inputs = Inputs::open(&[p], &ReadOptions::default()).unwrap();
    inputs.records().map(|i| i.unwrap()).collect()
}

/// Arbitrary HTML: tags (known and not), attributes with quotes and `>`,
/// comments, entities and scripts around hostile text.
fn html() -> impl Strategy<Value = String> {
    let tag = prop_oneof![
        Just("<div>"),
        Just("</div>"),
        Just("<p>"),
        Just("</p>"),
        Just("<b>"),
        Just("</i>"),
        Just("<br/>"),
        Just("<li>"),
        Just("<table><tr><td>"),
        Just("</td></tr></table>"),
        Just("<script>var x = '<p>not text</p>';</script>"),
        Just("<style>p{}</style>"),
        Just("<!-- a > comment -->"),
        Just("<a href=\"x>y\">"),
        Just("</a>"),
        Just("&amp;&#x1F600;&nbsp;&bogus;"),
        Just("<"),
        Just(">"),
        Just("<x-custom attr='1'>"),
        Just("<h1>"),
        Just("</h1>"),
    ]
    .prop_map(String::from);
    prop::collection::vec(prop_oneof![tag, piece()], 0..80).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn segments_are_code_point_slices(t in text(), split in any::<bool>()) {
        check_segments(Source::plain(&t), &RepeatIndex::default(), split)?;
        // Its lines repeated across a corpus, or across one site's pages:
        // the repeat index drops them and the slices still hold.
        let idx = RepeatIndex::build(std::iter::repeat_n(Source::plain(&t), 3), &SegmentConfig::default());
        check_segments(Source::plain(&t), &idx, true)?;
        let site = Source { text: &t, site: Some("example.org".into()), extracted: false };
        let idx = RepeatIndex::build(std::iter::repeat_n(site.clone(), 3), &SegmentConfig::default());
        check_segments(site, &idx, true)?;
    }

    #[test]
    fn html_pages_segment_into_slices(h in html()) {
        let t = html_to_text(&h);
        let page = Source { text: &t, site: Some("example.org".into()), extracted: true };
        check_segments(page.clone(), &RepeatIndex::default(), true)?;
        let idx = RepeatIndex::build(std::iter::repeat_n(page.clone(), 3), &SegmentConfig::default());
        check_segments(page, &idx, true)?;
    }

    #[test]
    fn jsonl_rows_read_back_and_junk_is_reported(
        rows in prop::collection::vec((text(), text(), any::<i64>()), 1..6),
        junk in prop::collection::vec((0usize..6, prop::collection::vec(any::<u8>(), 0..40)), 0..3),
    ) {
        let mut lines: Vec<Vec<u8>> = rows
            .iter()
            .enumerate()
            .map(|(i, (id, t, n))| {
                serde_json::json!({"id": format!("{i}:{id}"), "text": t, "n": n}).to_string().into_bytes()
            })
            .collect();
        for (at, bytes) in &junk {
            let mut b: Vec<u8> = bytes.iter().copied().filter(|&c| c != b'\n').collect();
            b.insert(0, b'#'); // never valid JSON, never blank
            lines.insert((*at).min(lines.len()), b);
        }
        let mut body = lines.join(&b'\n');
        body.push(b'\n');
        let items = read_file("c.jsonl", &body);
        prop_assert_eq!(items.len(), lines.len(), "every line is a record or a reported bad row");
        let mut got = vec![];
        for (k, it) in items.iter().enumerate() {
            match it {
                Item::Record(r) => {
                    let at = format!("c.jsonl:{}", k + 1);
                    prop_assert!(r.origin.ends_with(&at), "{} at {}", r.origin, at);
                    got.push((r.id.clone(), r.text.clone()));
                }
                Item::Bad { location, message } => {
                    let at = format!("c.jsonl:{}", k + 1);
                    prop_assert!(location.ends_with(&at), "{} at {}", location, at);
                    prop_assert!(!message.is_empty() && !message.contains('\n'));
                }
            }
        }
        let want: Vec<(String, String)> = rows
            .iter()
            .enumerate()
            .map(|(i, (id, t, _))| (format!("{i}:{id}"), t.clone()))
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn json_escapes_never_panic(parts in prop::collection::vec(prop_oneof![
        Just("\\ud800".to_string()), Just("\\udfff".to_string()), Just("\\ud83d\\ude00".to_string()),
        Just("\\u0000".to_string()), Just("\\n".to_string()), Just("\\\"".to_string()),
        Just("\\u202e".to_string()), Just("\\x41".to_string()), Just("\\".to_string()),
        "[a-z ]{0,5}",
    ], 0..12)) {
        let raw = parts.concat();
        let line = format!("{{\"id\": \"x\", \"text\": \"{raw}\"}}\n");
        let items = read_file("e.jsonl", line.as_bytes());
        prop_assert_eq!(items.len(), 1);
        let want: Result<serde_json::Value, _> = serde_json::from_str(line.trim());
        match (&items[0], want) {
            (Item::Record(r), Ok(v)) => prop_assert_eq!(&r.text, v["text"].as_str().unwrap()),
            (Item::Bad { message, .. }, Err(_)) => prop_assert!(message.starts_with("malformed JSON")),
            (it, w) => prop_assert!(false, "{it:?} vs {w:?}"),
        }
    }

    #[test]
    fn csv_rows_read_back(rows in prop::collection::vec((text(), text()), 1..6)) {
        let mut w = csv::Writer::from_writer(vec![]);
        w.write_record(["id", "text", "desk"]).unwrap();
        for (i, (id, t)) in rows.iter().enumerate() {
            w.write_record([format!("{i}{id}").as_str(), t.as_str(), "x"]).unwrap();
        }
        let items = read_file("c.csv", &w.into_inner().unwrap());
        let got: Vec<(String, String)> = items
            .iter()
            .map(|it| match it {
                Item::Record(r) => (r.id.clone(), r.text.clone()),
                Item::Bad { location, message } => (location.clone(), message.clone()),
            })
            .collect();
        let want: Vec<(String, String)> = rows
            .iter()
            .enumerate()
            .map(|(i, (id, t))| (format!("{i}{id}"), t.clone()))
            .collect();
        prop_assert_eq!(got, want);
    }
}

/// A 10 MB line: read, segmented, sliced.
#[test]
fn a_ten_megabyte_line() {
    let unit = "Переговоры продолжатся в Женеве 👍🏽, сказал министр e\u{301}. ";
    let t = unit.repeat(10_000_000 / unit.len() + 1);
    let line = serde_json::json!({"id": "big", "text": t}).to_string() + "\n";
    assert!(line.len() > 10_000_000);
    let items = read_file("big.jsonl", line.as_bytes());
    let Item::Record(r) = &items[0] else {
        panic!("{:?}", items[0])
    };
    assert_eq!(r.text, t);
    let s = segment(
        r.segment_source(),
        &RepeatIndex::default(),
        &SegmentConfig::default(),
    );
    assert_eq!(s.paragraphs.len(), 1);
    assert_eq!(s.paragraphs[0].text, t.trim());
}

/// 100,000 nested elements (the parser's cost grew with the square of the
/// depth before nesting was limited).
#[test]
fn deeply_nested_html() {
    let n = 100_000;
    let h = format!(
        "{}<p>قال الوزير إن المساعدات ستصل، وفق بيان رسمي.</p>{}",
        "<div><span>".repeat(n),
        "</span></div>".repeat(n)
    );
    let t = html_to_text(&h);
    assert!(
        t.contains("قال الوزير إن المساعدات ستصل، وفق بيان رسمي."),
        "{t:?}"
    );
}
