//! Language identification per paragraph (whatlang), reported as an ISO 639-1
//! code where one exists (ISO 639-3 otherwise) with whatlang's confidence.

use whatlang::Lang;

/// `("und", 0.0)` when no language can be detected (digits, emoji only).
pub fn detect(text: &str) -> (String, f32) {
    match whatlang::detect(text) {
        Some(info) => (iso639_1(info.lang()).to_string(), info.confidence() as f32),
        None => ("und".to_string(), 0.0),
    }
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
}
