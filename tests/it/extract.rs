//! HTML pages to article paragraphs and metadata columns, through `tag`:
//! small pages written for each case, asserting the paragraphs exactly.

use polars::prelude::*;
use std::path::Path;

/// Tags a folder of pages (`name` may hold a sub-folder) with no NER and
/// returns the output table.
fn tag_pages(pages: &[(&str, Vec<u8>)]) -> DataFrame {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("pages");
    for (name, bytes) in pages {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    super::tag_without_ner(&dir, &d.path().join("out.parquet"))
}

fn strings(df: &DataFrame, col: &str) -> Vec<Option<String>> {
    df.column(col)
        .unwrap_or_else(|e| panic!("{col}: {e}"))
        .str()
        .unwrap()
        .iter()
        .map(|s| s.map(str::to_string))
        .collect()
}

/// One article's paragraphs, in order.
fn paragraphs(df: &DataFrame, article: &str) -> Vec<String> {
    let ids = strings(df, "article_id");
    strings(df, "text")
        .into_iter()
        .zip(ids)
        .filter(|(_, id)| id.as_deref() == Some(article))
        .map(|(t, _)| t.unwrap())
        .collect()
}

/// A metadata column's value for an article (the same on all its rows).
fn meta(df: &DataFrame, article: &str, col: &str) -> Option<String> {
    let ids = strings(df, "article_id");
    let vals: Vec<Option<String>> = strings(df, col)
        .into_iter()
        .zip(ids)
        .filter(|(_, id)| id.as_deref() == Some(article))
        .map(|(v, _)| v)
        .collect();
    assert!(!vals.is_empty(), "{article} has no rows");
    assert!(vals.windows(2).all(|w| w[0] == w[1]), "{col}: {vals:?}");
    vals[0].clone()
}

/// A news page: site chrome around an `<article>` holding `body`.
fn page(head: &str, body: &str) -> String {
    titled("Parliament backs new aid package", head, body)
}

fn titled(title: &str, head: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><title>Aid vote | Kyiv Ledger</title>{head}</head><body>\
         <header><nav><a href=/>Home</a> <a href=/world>World</a> <a href=/sport>Sport</a></nav></header>\
         <main><article><h1>{title}</h1>{body}</article></main>\
         <aside class=sidebar><h3>Most read</h3><ul><li><a href=/a>Storm hits the coast</a></li>\
         <li><a href=/b>Prices rise again</a></li></ul></aside>\
         <footer><p>© 2026 Kyiv Ledger. All rights reserved.</p></footer></body></html>"
    )
}

const P1: &str =
    "The parliament approved the package on Tuesday after a long debate, officials said.";
const P2: &str =
    "The vote came after weeks of negotiations between the coalition partners in the capital.";
const P3: &str =
    "Critics said the money would arrive too late to change the situation on the ground.";

#[test]
fn a_table_becomes_one_paragraph_per_row() {
    let body = format!(
        "<p>{P1}</p><table><thead><tr><th>Country</th><th>Aid (bn €)</th></tr></thead>\
         <tbody><tr><td>Germany</td><td> 10.5 </td></tr><tr><td><b>France</b></td><td>3.2</td></tr></tbody></table>\
         <p>{P2}</p>"
    );
    let df = tag_pages(&[("t.html", page("", &body).into_bytes())]);
    assert_eq!(
        paragraphs(&df, "t.html"),
        [
            "Parliament backs new aid package",
            P1,
            "Country | Aid (bn €)",
            "Germany | 10.5",
            "France | 3.2",
            P2
        ]
    );
}

#[test]
fn a_list_in_the_body_is_kept() {
    let body = format!(
        "<p>{P1} The package includes:</p><ul><li>air defence systems for the cities;</li>\
         <li>artillery shells, <em>155 mm</em>;</li><li>money for the energy grid.</li></ul><p>{P2}</p>"
    );
    let df = tag_pages(&[("l.html", page("", &body).into_bytes())]);
    assert_eq!(
        paragraphs(&df, "l.html"),
        [
            "Parliament backs new aid package".to_string(),
            format!("{P1} The package includes:"),
            "air defence systems for the cities;".into(),
            "artillery shells, 155 mm;".into(),
            "money for the energy grid.".into(),
            P2.into(),
        ]
    );
}

/// A "Read more" teaser inside the article goes, and the article's text
/// after it stays (it used to be taken for a comments marker).
#[test]
fn read_more_inside_an_article_keeps_what_follows() {
    let body = format!(
        "<p>{P1}</p><p><a href=/older>Read more: How the last package was spent</a></p>\
         <p>{P2}</p><p>{P3}</p>"
    );
    let df = tag_pages(&[("r.html", page("", &body).into_bytes())]);
    assert_eq!(
        paragraphs(&df, "r.html"),
        ["Parliament backs new aid package", P1, P2, P3]
    );
}

#[test]
fn a_comment_thread_is_dropped() {
    let body = format!(
        "<p>{P1}</p><p>{P2}</p>\
         <section id=comments><h3>34 responses to “Parliament backs new aid package”</h3>\
         <ol class=commentlist><li><p>Finally some good news, thanks for reporting this.</p></li>\
         <li><p>This will not change anything, mark my words.</p></li></ol>\
         <div id=respond><p>Save my name, email, and website in this browser for the next time I comment.</p></div></section>"
    );
    let df = tag_pages(&[("c.html", page("", &body).into_bytes())]);
    assert_eq!(
        paragraphs(&df, "c.html"),
        ["Parliament backs new aid package", P1, P2]
    );
}

/// Pages in windows-1251 (undeclared) and windows-1256 (declared) give
/// the same paragraphs as their text, and name their encoding.
#[test]
fn pages_in_windows_1251_and_1256_decode_and_name_their_encoding() {
    let ru = [
        "Министр обороны заявил, что переговоры о поставках продолжатся на следующей неделе в Женеве.",
        "Эксперты считают, что решение будет принято до конца месяца, сообщили в ведомстве.",
    ];
    let ar = [
        "قال وزير الخارجية إن بلاده ستواصل تقديم المساعدات إلى أوكرانيا، وفق بيان رسمي صدر اليوم.",
        "وأضاف أن الحكومة ستعرض الخطة على البرلمان الأسبوع المقبل للمصادقة عليها.",
    ];
    let doc = |head: &str, home: &str, title: &str, ps: &[&str]| {
        let body: String = ps.iter().map(|p| format!("<p>{p}</p>")).collect();
        format!(
            "<html><head>{head}</head><body><nav><a href=/>{home}</a></nav>\
             <article><h1>{title}</h1>{body}</article></body></html>"
        )
    };
    let enc = |label: &str, s: String| {
        let e = encoding_rs::Encoding::for_label(label.as_bytes()).unwrap();
        let (b, _, bad) = e.encode(&s);
        assert!(!bad, "{label} cannot encode the page");
        b.into_owned()
    };
    let df = tag_pages(&[
        (
            "ru.html",
            enc(
                "windows-1251",
                doc("", "Главная", "Переговоры в Женеве", &ru),
            ),
        ),
        (
            "ar.html",
            enc(
                "windows-1256",
                doc(
                    "<meta charset=\"windows-1256\">",
                    "الرئيسية",
                    "مساعدات جديدة",
                    &ar,
                ),
            ),
        ),
        (
            "utf8.html",
            doc("", "Главная", "Переговоры в Женеве", &ru).into_bytes(),
        ),
    ]);
    assert_eq!(
        paragraphs(&df, "ru.html"),
        ["Переговоры в Женеве", ru[0], ru[1]]
    );
    assert_eq!(paragraphs(&df, "ar.html"), ["مساعدات جديدة", ar[0], ar[1]]);
    assert_eq!(paragraphs(&df, "utf8.html"), paragraphs(&df, "ru.html"));
    assert_eq!(
        meta(&df, "ru.html", "encoding").as_deref(),
        Some("windows-1251")
    );
    assert_eq!(
        meta(&df, "ar.html", "encoding").as_deref(),
        Some("windows-1256")
    );
    assert_eq!(meta(&df, "utf8.html", "encoding").as_deref(), Some("utf-8"));
}

#[test]
fn json_ld_metadata_fills_the_columns() {
    let ld = r#"<script type="application/ld+json">{"@context":"https://schema.org","@type":"NewsArticle",
        "headline":"Parliament backs new aid package","datePublished":"2026-03-14T09:30:00+02:00",
        "author":{"@type":"Person","name":"Olena Kovalenko"},
        "publisher":{"@type":"Organization","name":"Kyiv Ledger"},
        "url":"https://kyivledger.example/news/aid-vote"}</script>"#;
    let bare = format!("<p>{P1}</p><p>{P2}</p>");
    let df = tag_pages(&[
        ("ld.html", page(ld, &bare).into_bytes()),
        ("bare.html", page("", &bare).into_bytes()),
    ]);
    // The headline is the title column; a heading that repeats it is not
    // also a paragraph (Readability's rule).
    assert_eq!(paragraphs(&df, "ld.html"), [P1, P2]);
    let want = [
        ("title", Some("Parliament backs new aid package")),
        ("published", Some("2026-03-14T09:30:00+02:00")),
        ("author", Some("Olena Kovalenko")),
        ("site", Some("Kyiv Ledger")),
        ("url", Some("https://kyivledger.example/news/aid-vote")),
    ];
    for (col, v) in want {
        assert_eq!(meta(&df, "ld.html", col).as_deref(), v, "{col}");
    }
    // A page that says nothing has nulls, not guesses; its <title> is a title.
    for col in ["published", "author", "site", "url"] {
        assert_eq!(meta(&df, "bare.html", col), None, "{col}");
    }
    assert!(meta(&df, "bare.html", "title").is_some());
}

/// A block inside the article that repeats across three pages of one site
/// is that site's template and goes from all three; the same words once on
/// another site's page stay, and so does each page's own text.
#[test]
fn boilerplate_that_repeats_across_a_sites_pages_is_dropped() {
    let promo =
        "Support independent journalism in Ukraine: become a member of the Kyiv Ledger today.";
    let stories = [
        "The parliament approved the package on Tuesday after a long debate, officials said.",
        "Grain exports through the Black Sea corridor rose for the third month in a row.",
        "The central bank kept its key rate unchanged, citing risks to the hryvnia.",
    ];
    let mut pages: Vec<(String, Vec<u8>)> = stories
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let head =
                format!("<link rel=canonical href=\"https://www.kyivledger.example/news/{i}\">");
            let body = format!("<p>{s}</p><p>{promo}</p><p>{P3}</p>");
            let title = format!("Ledger story {i}");
            (
                format!("ledger-{i}.html"),
                titled(&title, &head, &body).into_bytes(),
            )
        })
        .collect();
    // Another site: the promo once, and enough pages that the line is rare
    // in the corpus as a whole (the corpus-level rule stays out of it).
    for i in 0..20 {
        let own = if i == 0 { promo } else { P2 };
        let body =
            format!("<p>Story number {i} from the other site, told in full.</p><p>{own}</p>");
        let title = format!("Other story {i}");
        pages.push((
            format!("other/{i:02}.html"),
            titled(&title, "", &body).into_bytes(),
        ));
    }
    let refs: Vec<(&str, Vec<u8>)> = pages.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    let df = tag_pages(&refs);
    for (i, s) in stories.iter().enumerate() {
        // P3 is on every page of the site too: a site's template.
        assert_eq!(
            paragraphs(&df, &format!("ledger-{i}.html")),
            [format!("Ledger story {i}"), s.to_string()],
            "page {i}"
        );
    }
    assert_eq!(
        paragraphs(&df, "other/00.html"),
        [
            "Other story 0",
            "Story number 0 from the other site, told in full.",
            promo
        ]
    );
}

/// The seed-style plain-text example keeps the line-based path.
#[test]
fn text_dumps_keep_the_line_rules() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("datasets/example");
    let text = std::fs::read(dir.join("en-aid-debate.txt")).unwrap();
    let df = tag_pages(&[("en.txt", text)]);
    assert!(strings(&df, "text").len() >= 3);
    assert!(df.column("encoding").is_err(), "no page columns for text");
}
