//! The segmenter on the shipped scraped-page example (datasets/example).

use paratag::input::html_to_text;
use paratag::segment::{segment, RepeatIndex, SegmentConfig};

#[test]
fn scraped_arabic_page_keeps_only_the_body() {
    let html = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/datasets/example/scraped-ar.html"
    ))
    .unwrap();
    let text = html_to_text(&html);
    let s = segment(&text, &RepeatIndex::default(), &SegmentConfig::default());
    let want = ["أقر البرلمان", "وقالت رئيسة", "في المقابل،", "ومن المنتظر"];
    assert_eq!(s.paragraphs.len(), want.len(), "{:#?}", s.paragraphs);
    for (p, w) in s.paragraphs.iter().zip(want) {
        assert!(
            p.text.starts_with(w),
            "{:?} should start with {w:?}",
            p.text
        );
    }
    for junk in [
        "مباشر",
        "أين يمكنك متابعتنا",
        "التعليقات",
        "الكنافة",
        "الأكثر قراءة",
        "var x",
    ] {
        assert!(
            s.paragraphs.iter().all(|p| !p.text.contains(junk)),
            "{junk} kept"
        );
    }
    assert!(s.dropped_lines >= 15, "{}", s.dropped_lines);
    let chars: Vec<char> = text.chars().collect();
    for p in &s.paragraphs {
        assert_eq!(chars[p.start..p.end].iter().collect::<String>(), p.text);
    }
}

#[test]
fn example_corpus_in_several_languages() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/example");
    let inputs = paratag::input::Inputs::open(&[dir.into()], &Default::default()).unwrap();
    let articles: Vec<paratag::input::Record> = inputs
        .records()
        .map(|i| match i.unwrap() {
            paratag::input::Item::Record(r) => r,
            bad => panic!("{bad:?}"),
        })
        .collect();
    assert_eq!(articles.len(), 7);
    let idx = RepeatIndex::build(
        articles.iter().map(|a| a.text.as_str()),
        &SegmentConfig::default(),
    );
    for a in &articles {
        let s = segment(&a.text, &idx, &SegmentConfig::default());
        assert!(
            !s.paragraphs.is_empty() && s.dropped_lines > 0,
            "{}: {s:?}",
            a.id
        );
        for p in &s.paragraphs {
            for junk in [
                "Follow us",
                "Most read",
                "Читайте также",
                "Startseite",
                "Головна",
                "Markets slide",
            ] {
                assert!(!p.text.contains(junk), "{}: kept {junk:?}", a.id);
            }
        }
    }
    let en = articles
        .iter()
        .find(|a| a.id == "en-aid-debate.txt")
        .unwrap();
    let s = segment(&en.text, &idx, &SegmentConfig::default());
    assert_eq!(s.paragraphs.len(), 3, "{s:#?}");
    assert!(s.paragraphs[0]
        .text
        .contains("sending the bill to the\nfull chamber."));
}
