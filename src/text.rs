//! Small text helpers every layer uses; this module depends on nothing in
//! the crate, so that using it makes no import circle.

/// A value quoted in an error, cut to 80 characters.
pub fn cut(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// A label normalised for matching: lowercase, runs of non-alphanumerics as `_`.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.trim().chars().flat_map(char::to_lowercase) {
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    out.trim_matches('_').to_string()
}
