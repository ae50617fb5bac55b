//! Delimited text tables (CSV, TSV, `;`- or `|`-separated), one reader for
//! the corpus and for gold sheets alike.
//!
//! - RFC 4180 quoting by default, for TSV too (`--no-quote` turns it off:
//!   some corpora put bare `"` in unquoted cells);
//! - `--delimiter`, `--quote`, `--no-header` with `--columns a,b,c`;
//! - text encoding: UTF-8 (a BOM is dropped), `--encoding LABEL`, or, when the
//!   first 64 KiB are not UTF-8, detected (chardetng) and reported;
//! - a missing column names the columns found, cut to 80 characters, and
//!   when the header looks separated by another character, that character
//!   and the flag to pass.

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// How to read a delimited file; the defaults read RFC 4180 CSV (or TSV)
/// with a header, in UTF-8.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TableOptions {
    /// Default: `,` for `.csv`, tab for `.tsv`.
    pub delimiter: Option<u8>,
    /// Default `"`.
    pub quote: Option<u8>,
    pub no_quote: bool,
    pub no_header: bool,
    /// Column names for a file without a header (`--no-header`).
    pub columns: Vec<String>,
    /// An encoding label (`cp1252`, `latin1`, `utf-16`, ...); default: UTF-8,
    /// or detected when the file is not UTF-8.
    pub encoding: Option<String>,
}

/// `tab`, `\t`, `comma`, `semicolon`, `pipe`, or one ASCII character.
pub fn parse_delimiter(s: &str) -> std::result::Result<u8, String> {
    match s {
        "tab" | "\\t" | "\t" => Ok(b'\t'),
        "comma" => Ok(b','),
        "semicolon" => Ok(b';'),
        "pipe" => Ok(b'|'),
        "space" => Ok(b' '),
        _ if s.len() == 1 && s.is_ascii() => Ok(s.as_bytes()[0]),
        _ => Err(format!(
            "expected one ASCII character or tab, comma, semicolon, pipe, space; got {s:?}"
        )),
    }
}

/// A table open for reading.
pub struct Table {
    pub reader: csv::Reader<Box<dyn Read + Send>>,
    /// Column names (from the header, or `--columns`).
    pub headers: Vec<String>,
    /// The encoding the bytes were decoded from, and whether it was detected.
    pub encoding: &'static str,
    pub detected: bool,
    delimiter: u8,
    /// The first line as read, for hints.
    first_line: String,
}

/// Bytes looked at to tell the encoding.
const SNIFF: usize = 64 << 10;

fn name(d: u8) -> String {
    match d {
        b'\t' => "tab".into(),
        b',' => "comma".into(),
        b';' => "semicolon".into(),
        b'|' => "pipe".into(),
        c => format!("{:?}", c as char),
    }
}

/// A reader of the file's text as UTF-8: its encoding is `--encoding`, a
/// BOM, valid UTF-8, or detected (then `detected` is true).
fn decoded(
    path: &Path,
    o: &TableOptions,
) -> Result<(Box<dyn Read + Send>, &'static encoding_rs::Encoding, bool)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut head = vec![0u8; SNIFF];
    let mut n = 0;
    while n < head.len() {
        let k = f.read(&mut head[n..]).map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        n += k;
    }
    head.truncate(n);
    let complete = n < SNIFF;
    let (encoding, detected) = match &o.encoding {
        Some(label) => (
            encoding_rs::Encoding::for_label(label.trim().as_bytes()).ok_or_else(|| {
                Error::Config(format!(
                    "--encoding {label:?}: unknown encoding (try utf-8, cp1252, latin1, utf-16)"
                ))
            })?,
            false,
        ),
        None => match encoding_rs::Encoding::for_bom(&head) {
            Some((e, _)) => (e, false),
            None if valid_utf8_prefix(&head, complete) => (encoding_rs::UTF_8, false),
            None => {
                let mut d = chardetng::EncodingDetector::new();
                d.feed(&head, complete);
                (d.guess(None, true), true)
            }
        },
    };
    let decoded: Box<dyn Read + Send> = if encoding == encoding_rs::UTF_8 {
        // Bytes as they are, so a bad byte is an error naming its row
        // and column, not a silent U+FFFD.
        let body = head.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&head).to_vec();
        Box::new(std::io::Cursor::new(body).chain(f))
    } else {
        Box::new(
            encoding_rs_io::DecodeReaderBytesBuilder::new()
                .encoding(Some(encoding))
                .bom_sniffing(o.encoding.is_none())
                .strip_bom(true)
                .build(std::io::Cursor::new(head).chain(f)),
        )
    };
    Ok((decoded, encoding, detected))
}

/// The column names (from the header row, or `--columns` with
/// `--no-header`) and the header line as read.
fn header(
    path: &Path,
    reader: &mut csv::Reader<Box<dyn Read + Send>>,
    o: &TableOptions,
    delimiter: u8,
) -> Result<(Vec<String>, String)> {
    let loc = |line: usize| format!("{}:{line}", path.display());
    Ok(if o.no_header {
        if o.columns.is_empty() {
            return Err(Error::Config(
                "--no-header needs --columns a,b,c naming the columns in order".into(),
            ));
        }
        (o.columns.clone(), String::new())
    } else {
        let h = reader.byte_headers().map_err(|e| {
            Error::input(
                loc(1),
                format!("cannot read the header: {}", csv_message(&e)),
            )
        })?;
        let names = h
            .iter()
            .map(|c| {
                std::str::from_utf8(c)
                    .map(|s| s.trim().to_string())
                    .map_err(|_| {
                        Error::input(
                            loc(1),
                            "invalid UTF-8 in the header (pass --encoding, e.g. cp1252)",
                        )
                    })
            })
            .collect::<Result<Vec<String>>>()?;
        let first = names.join(&(delimiter as char).to_string());
        (names, first)
    })
}

impl Table {
    /// Opens `path`; `tsv` picks tab as the default delimiter.
    pub fn open(path: &Path, o: &TableOptions, tsv: bool) -> Result<Table> {
        let (decoded, encoding, detected) = decoded(path, o)?;
        let delimiter = o.delimiter.unwrap_or(if tsv { b'\t' } else { b',' });
        let mut b = csv::ReaderBuilder::new();
        b.flexible(false)
            .delimiter(delimiter)
            .has_headers(!o.no_header)
            .quoting(!o.no_quote)
            .quote(o.quote.unwrap_or(b'"'));
        let mut reader = b.from_reader(decoded);
        let (headers, first_line) = header(path, &mut reader, o, delimiter)?;
        Ok(Table {
            reader,
            headers,
            encoding: encoding.name(),
            detected,
            delimiter,
            first_line,
        })
    }

    /// The error for a column the file lacks: the columns found (cut), and
    /// a hint when the header reads as another delimiter's.
    pub fn missing(&self, path: &Path, col: &str, mapped_by: &str) -> Error {
        let found = crate::text::cut(&self.headers.join(", "));
        let mut msg = format!("missing column `{col}` (columns: {found})");
        let counts = [b'\t', b';', b',', b'|']
            .into_iter()
            .filter(|&d| d != self.delimiter)
            .map(|d| (self.first_line.matches(d as char).count(), d))
            .max();
        match counts {
            Some((k, d)) if k > 0 && self.headers.len() <= 2 => {
                let flag = if d == b'\t' {
                    "tab".to_string()
                } else {
                    format!("'{}'", d as char)
                };
                msg += &format!(
                    "; the header looks {}-separated: pass --delimiter {flag}",
                    name(d)
                );
            }
            _ => msg += &format!("; {mapped_by}"),
        }
        Error::input(format!("{}:1", path.display()), msg)
    }

    pub fn position(&self, col: &str) -> Option<usize> {
        self.headers.iter().position(|h| h == col)
    }

    /// What the summary says about the encoding, if it was not plain UTF-8.
    pub fn encoding_note(&self) -> Option<String> {
        match (self.encoding, self.detected) {
            ("UTF-8", _) => None,
            (e, true) => Some(format!(
                "decoded as {e} (detected; pass --encoding to choose)"
            )),
            (e, false) => Some(format!("decoded as {e}")),
        }
    }
}

/// Whether `head` is UTF-8, allowing a sequence cut at the end of the sniff.
fn valid_utf8_prefix(head: &[u8], complete: bool) -> bool {
    match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => !complete && e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    }
}

/// A CSV error on one line, without the crate's byte positions, and any
/// quoted cell cut to 80 characters.
pub fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => format!(
            "found {len} fields where the header has {expected_len} (a delimiter inside an unquoted cell, or a stray quote?)"
        ),
        csv::ErrorKind::Utf8 { err, .. } => format!(
            "invalid UTF-8 in field {} (pass --encoding, e.g. cp1252)",
            err.field() + 1
        ),
        _ => crate::text::cut(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_parse_by_name_or_character() {
        assert_eq!(parse_delimiter("tab"), Ok(b'\t'));
        assert_eq!(parse_delimiter(";"), Ok(b';'));
        assert!(parse_delimiter("ab").is_err());
    }

    #[test]
    fn utf8_cut_at_the_sniff_end_is_still_utf8() {
        let s = "Київ".as_bytes();
        assert!(valid_utf8_prefix(&s[..s.len() - 1], false));
        assert!(!valid_utf8_prefix(&s[..s.len() - 1], true));
        assert!(!valid_utf8_prefix(b"caf\xe9 au lait", false));
    }
}
