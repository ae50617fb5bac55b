//! The segmenter on the shipped scraped-page example (datasets/example).

use paratag::input::page_record;
use paratag::segment::{segment, RepeatIndex, SegmentConfig};
use std::path::Path;

#[test]
fn scraped_arabic_page_keeps_only_the_body() {
    let html = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/datasets/example/scraped-ar.html"
    ))
    .unwrap();
    let r = page_record(&html, "ar".into(), "scraped-ar.html".into(), 0, None);
    let text = &r.text;
    let s = segment(
        r.segment_source(),
        &RepeatIndex::default(),
        &SegmentConfig::default(),
    );
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
        articles.iter().map(|a| a.segment_source()),
        &SegmentConfig::default(),
    );
    for a in &articles {
        let s = segment(a.segment_source(), &idx, &SegmentConfig::default());
        // A page's furniture goes at extraction; a text dump's lines here.
        assert!(
            !s.paragraphs.is_empty() && (a.extracted || s.dropped_lines > 0),
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
    let s = segment(en.segment_source(), &idx, &SegmentConfig::default());
    assert_eq!(s.paragraphs.len(), 3, "{s:#?}");
    assert!(s.paragraphs[0]
        .text
        .contains("sending the bill to the\nfull chamber."));
}

/// Scraped pages in windows-1251 and windows-1256, one declaring its
/// charset and one not, are tagged like their UTF-8 twins (they used to be
/// refused as invalid UTF-8).
#[test]
fn pages_in_legacy_encodings_are_tagged_like_utf8() {
    let d = tempfile::tempdir().unwrap();
    let ru = "Министр обороны заявил, что переговоры о поставках продолжатся на следующей неделе в Женеве, сообщили в ведомстве.";
    let ar = "قال وزير الخارجية إن بلاده ستواصل تقديم المساعدات إلى أوكرانيا، وفق بيان رسمي صدر اليوم عن الوزارة.";
    let page = |head: &str, body: &str| {
        format!("<html><head>{head}<title>t</title></head><body><nav>Главная</nav><p>{body}</p><p>{body} {body}</p></body></html>")
    };
    let (legacy, utf8) = (d.path().join("legacy"), d.path().join("utf8"));
    for dir in [&legacy, &utf8] {
        std::fs::create_dir_all(dir).unwrap();
    }
    for (name, enc, head, body) in [
        ("ru.html", "windows-1251", "", ru),
        (
            "ar.html",
            "windows-1256",
            "<meta charset=\"windows-1256\">",
            ar,
        ),
    ] {
        let html = page(head, body);
        let e = encoding_rs::Encoding::for_label(enc.as_bytes()).unwrap();
        std::fs::write(legacy.join(name), e.encode(&html).0).unwrap();
        std::fs::write(utf8.join(name), html.as_bytes()).unwrap();
    }
    let tag = |dtype: &str, dir: &Path| {
        let out = d.path().join(format!(
            "{}-{dtype}.parquet",
            dir.file_name().unwrap().to_string_lossy()
        ));
        super::tag_without_ner_in(dtype, dir, &out)
    };
    // The comparison holds in every dtype the tests run.
    for dtype in super::DTYPES {
        let (a, b) = (tag(dtype, &legacy), tag(dtype, &utf8));
        // Everything but the encoding each page names.
        let enc = |df: &polars::prelude::DataFrame| -> Vec<String> {
            let c = df.column("encoding").unwrap().str().unwrap();
            c.iter().map(|e| e.unwrap().to_string()).collect()
        };
        assert!(
            enc(&a).iter().all(|e| e.starts_with("windows-125")),
            "{:?}",
            enc(&a)
        );
        assert!(enc(&b).iter().all(|e| e == "utf-8"), "{:?}", enc(&b));
        let (a, b) = (a.drop("encoding").unwrap(), b.drop("encoding").unwrap());
        super::jobs::assert_same("windows-1251/1256 against UTF-8", &a, &b);
        let texts: Vec<String> = a
            .column("text")
            .unwrap()
            .str()
            .unwrap()
            .iter()
            .map(|t| t.unwrap().to_string())
            .collect();
        assert!(
            texts.contains(&ru.to_string()) && texts.contains(&ar.to_string()),
            "{texts:?}"
        );
    }
}
