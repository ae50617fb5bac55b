//! Language identification per paragraph (whatlang), reported as an ISO 639-1
//! code where one exists (ISO 639-3 otherwise) with whatlang's confidence.
//!
//! Short paragraphs are where detectors fail: a two-line Russian paragraph
//! reads as Bulgarian about once in thirty (SIB-200 sentences, docs/benchmarks.md
//! "Language identification"). A paragraph is part of an article, and the
//! article's language is known far better. So where whatlang itself calls a
//! paragraph's result unreliable, and the article's language is written in the
//! same script, the paragraph gets the article's language. A paragraph in
//! another script (an English quote in an Arabic article) or one detected
//! reliably keeps its own. `--languages` restricts the candidates.

use crate::error::{Error, Result};
use whatlang::{Info, Lang};

/// The article's language is read from its first this many bytes of text.
pub const ARTICLE_BYTES: usize = 8192;

/// The candidate languages: all whatlang knows (empty), or a list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Languages(Vec<Lang>);

impl Languages {
    /// From ISO 639-1 codes (`en`, `ru`), or ISO 639-3 where a language has
    /// no 639-1 code; an unknown code is an error naming it.
    pub fn parse(codes: &[String]) -> Result<Languages> {
        let mut langs = Vec::new();
        for c in codes
            .iter()
            .map(|c| c.trim().to_lowercase())
            .filter(|c| !c.is_empty())
        {
            let lang = Lang::all()
                .iter()
                .copied()
                .find(|l| iso639_1(*l) == c)
                .or_else(|| Lang::from_code(c.as_str()))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "--languages: unknown language code `{c}`; use ISO 639-1 codes (en, ru, uk, ar, ...) of the languages whatlang knows"
                    ))
                })?;
            if !langs.contains(&lang) {
                langs.push(lang);
            }
        }
        langs.sort_by_key(|l| iso639_1(*l));
        Ok(Languages(langs))
    }

    /// Their codes, sorted; empty for all languages.
    pub fn codes(&self) -> Vec<&'static str> {
        self.0.iter().map(|l| iso639_1(*l)).collect()
    }
}

/// A language detector over a set of candidates.
pub struct Detector(whatlang::Detector);

impl Detector {
    pub fn new(languages: &Languages) -> Detector {
        Detector(if languages.0.is_empty() {
            whatlang::Detector::new()
        } else {
            whatlang::Detector::with_allowlist(languages.0.clone())
        })
    }

    /// An article's language, from its paragraphs (the first
    /// [`ARTICLE_BYTES`] of them).
    pub fn article<'a>(&self, paragraphs: impl Iterator<Item = &'a str>) -> Option<Info> {
        let mut text = String::new();
        for p in paragraphs {
            if text.len() >= ARTICLE_BYTES {
                break;
            }
            text.push_str(p);
            text.push('\n');
        }
        self.0.detect(&text)
    }

    /// A paragraph's language and confidence, `("und", 0.0)` when none can
    /// be detected (digits, emoji only). An unreliable result in the
    /// article's script takes the article's language and confidence.
    pub fn paragraph(&self, text: &str, article: Option<&Info>) -> (String, f32) {
        match (self.0.detect(text), article) {
            (Some(p), Some(a))
                if !p.is_reliable() && p.lang() != a.lang() && p.script() == a.script() =>
            {
                (iso639_1(a.lang()).to_string(), a.confidence() as f32)
            }
            (Some(p), _) => (iso639_1(p.lang()).to_string(), p.confidence() as f32),
            (None, _) => ("und".to_string(), 0.0),
        }
    }
}

/// A text's language on its own, among all candidates.
pub fn detect(text: &str) -> (String, f32) {
    Detector::new(&Languages::default()).paragraph(text, None)
}

pub fn iso639_1(lang: Lang) -> &'static str {
    use Lang::*;
    match lang {
        Epo => "eo",
        Eng => "en",
        Rus => "ru",
        Cmn => "zh",
        Spa => "es",
        Por => "pt",
        Ita => "it",
        Ben => "bn",
        Fra => "fr",
        Deu => "de",
        Ukr => "uk",
        Kat => "ka",
        Ara => "ar",
        Hin => "hi",
        Jpn => "ja",
        Heb => "he",
        Yid => "yi",
        Pol => "pl",
        Amh => "am",
        Jav => "jv",
        Kor => "ko",
        Nob => "nb",
        Dan => "da",
        Swe => "sv",
        Fin => "fi",
        Tur => "tr",
        Nld => "nl",
        Hun => "hu",
        Ces => "cs",
        Ell => "el",
        Bul => "bg",
        Bel => "be",
        Mar => "mr",
        Kan => "kn",
        Ron => "ro",
        Slv => "sl",
        Hrv => "hr",
        Srp => "sr",
        Mkd => "mk",
        Lit => "lt",
        Lav => "lv",
        Est => "et",
        Tam => "ta",
        Vie => "vi",
        Urd => "ur",
        Tha => "th",
        Guj => "gu",
        Uzb => "uz",
        Pan => "pa",
        Aze => "az",
        Ind => "id",
        Tel => "te",
        Pes => "fa",
        Mal => "ml",
        Ori => "or",
        Mya => "my",
        Nep => "ne",
        Sin => "si",
        Khm => "km",
        Tuk => "tk",
        Aka => "ak",
        Zul => "zu",
        Sna => "sn",
        Afr => "af",
        Lat => "la",
        Slk => "sk",
        Cat => "ca",
        Tgl => "tl",
        Hye => "hy",
        Cym => "cy",
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn detects_common_news_languages() {
        let cases = [
            ("ar", "قال وزير الخارجية إن بلاده ستواصل تقديم المساعدات الإنسانية إلى أوكرانيا خلال العام المقبل."),
            ("ru", "Министр заявил, что переговоры о прекращении огня продолжатся на следующей неделе в Женеве."),
            ("uk", "Уряд України повідомив, що нова партія допомоги надійде до кінця місяця, а переговори тривають."),
            ("en", "The minister said that talks on a ceasefire would continue next week in Geneva."),
            ("de", "Der Minister sagte, dass die Gespräche über einen Waffenstillstand nächste Woche in Genf fortgesetzt werden."),
        ];
        for (want, text) in cases {
            assert_eq!(super::detect(text).0, want, "{text}");
        }
        assert_eq!(super::detect("12345 🙂").0, "und");
    }

    /// A short Russian line whatlang alone calls Bulgarian is Russian in a
    /// Russian article; an English quote in it stays English.
    #[test]
    fn short_paragraphs_take_their_articles_language_when_unsure() {
        use super::*;
        let d = Detector::new(&Languages::default());
        let short = "64-летний водитель грузовика в аварии не пострадал.";
        assert_ne!(
            detect(short).0,
            "ru",
            "the case needs whatlang to be unsure"
        );
        let article = [
            "Министр заявил, что переговоры о прекращении огня продолжатся на следующей неделе в Женеве.",
            "По его словам, стороны обсудят обмен пленными и гуманитарные коридоры для мирных жителей.",
            short,
        ];
        let a = d.article(article.iter().copied());
        assert_eq!(d.paragraph(short, a.as_ref()).0, "ru");
        let quote = "The minister said that talks on a ceasefire would continue next week.";
        assert_eq!(d.paragraph(quote, a.as_ref()).0, "en");
    }

    #[test]
    fn languages_restrict_the_candidates_and_unknown_codes_are_named() {
        use super::*;
        let l = Languages::parse(&["uk".into(), " RU ".into(), "ru".into()]).unwrap();
        assert_eq!(l.codes(), ["ru", "uk"]);
        let d = Detector::new(&l);
        let text = "Переговоры продолжатся на следующей неделе.";
        assert!(["ru", "uk"].contains(&d.paragraph(text, None).0.as_str()));
        let e = Languages::parse(&["en".into(), "xx".into()])
            .unwrap_err()
            .to_string();
        assert!(e.contains("`xx`"), "{e}");
    }
}
