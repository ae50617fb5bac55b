//! The house's layering, read from the source: the library's modules import
//! each other without circles, the CLI crate (clap) stays in `src/cmd/`
//! and `src/main.rs`, and no function grows past [`MAX_FN_LINES`].

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// A file's code without comments and without its test module.
fn code(text: &str) -> String {
    let text = text.split("#[cfg(test)]").next().unwrap_or("");
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The library's modules (`input`, `train::tuned`, ...) and the modules
/// each one names through `crate::` paths.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files = vec![];
    sources(src, &mut files);
    let module = |p: &Path| -> Option<String> {
        let rel = p.strip_prefix(src).ok()?.with_extension("");
        let mut parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.last().is_some_and(|l| l == "mod") {
            parts.pop();
        }
        let top = parts.first()?.as_str();
        (!matches!(top, "cmd" | "main" | "lib")).then(|| parts.join("::"))
    };
    let modules: BTreeSet<String> = files.iter().filter_map(|f| module(f)).collect();
    let mut g = BTreeMap::new();
    for f in &files {
        let Some(m) = module(f) else { continue };
        let text = code(&std::fs::read_to_string(f).unwrap());
        let mut deps = BTreeSet::new();
        for (i, _) in text.match_indices("crate::") {
            let path: String = text[i + 7..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let parts: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
            // The longest prefix that is a module.
            let dep = (1..=parts.len())
                .rev()
                .map(|n| parts[..n].join("::"))
                .find(|p| modules.contains(p));
            if let Some(d) = dep {
                let within = d == m || m.starts_with(&format!("{d}::"));
                if !within {
                    deps.insert(d);
                }
            }
        }
        g.insert(m, deps);
    }
    g
}

/// A circle in the graph, if there is one.
fn circle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        v: &str,
        g: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        state.insert(v.to_string(), 1);
        path.push(v.to_string());
        for w in g.get(v).into_iter().flatten() {
            match state.get(w.as_str()).copied().unwrap_or(0) {
                1 => {
                    let from = path.iter().position(|p| p == w).unwrap();
                    let mut c = path[from..].to_vec();
                    c.push(w.clone());
                    return Some(c);
                }
                0 => {
                    if let Some(c) = visit(w, g, state, path) {
                        return Some(c);
                    }
                }
                _ => {}
            }
        }
        path.pop();
        state.insert(v.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for v in g.keys() {
        if state.get(v.as_str()).copied().unwrap_or(0) == 0 {
            if let Some(c) = visit(v, g, &mut state, &mut vec![]) {
                return Some(c);
            }
        }
    }
    None
}

#[test]
fn modules_import_each_other_without_circles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let g = graph(&src);
    assert!(g.contains_key("input") && g.contains_key("train::tuned"));
    assert!(
        g["scan"].contains("segment"),
        "the graph reads crate:: paths"
    );
    if let Some(c) = circle(&g) {
        panic!("import circle: {}", c.join(" -> "));
    }
    // The check finds a circle when there is one.
    let mut bad = g.clone();
    bad.get_mut("segment").unwrap().insert("scan".into());
    assert!(circle(&bad).is_some());
}

#[test]
fn clap_stays_in_the_command_line_files() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    sources(&src, &mut files);
    for f in files {
        let rel = f.strip_prefix(&src).unwrap();
        if rel.starts_with("cmd") || rel == Path::new("main.rs") {
            continue;
        }
        let text = code(&std::fs::read_to_string(&f).unwrap());
        assert!(!text.contains("clap"), "{} uses clap", rel.display());
    }
}

/// The longest function `src/` may hold, in lines (the house keeps them
/// short: a long one becomes named steps).
const MAX_FN_LINES: usize = 80;

/// The code with comments, string and char literals blanked (their
/// newlines kept), so braces inside them do not count.
fn blank_literals(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = String::with_capacity(src.len());
    let mut i = 0;
    let find = |from: usize, pat: &[u8]| -> usize {
        (from..b.len())
            .find(|&k| b[k..].starts_with(pat))
            .map_or(b.len(), |k| k + pat.len())
    };
    let newlines = |out: &mut String, s: &[u8]| {
        out.extend(s.iter().filter(|&&c| c == b'\n').map(|_| '\n'));
    };
    while i < b.len() {
        let ident_before = i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if b[i..].starts_with(b"//") {
            i = (i..b.len()).find(|&k| b[k] == b'\n').unwrap_or(b.len());
        } else if b[i..].starts_with(b"/*") {
            let end = find(i + 2, b"*/");
            newlines(&mut out, &b[i..end]);
            i = end;
        } else if b[i] == b'r'
            && !ident_before
            && [&b"\""[..], b"#\"", b"##\""]
                .iter()
                .any(|p| b[i + 1..].starts_with(p))
        {
            let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
            let close: Vec<u8> = std::iter::once(b'"')
                .chain(std::iter::repeat_n(b'#', hashes))
                .collect();
            let end = find(i + 2 + hashes, &close);
            newlines(&mut out, &b[i..end]);
            i = end;
        } else if b[i] == b'"' {
            let mut j = i + 1;
            while j < b.len() && b[j] != b'"' {
                j += if b[j] == b'\\' { 2 } else { 1 };
            }
            let end = (j + 1).min(b.len());
            newlines(&mut out, &b[i..end]);
            i = end;
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{..}'); a lifetime has no
            // closing quote after one character.
            let rest = &src[i + 1..];
            let len = if rest.starts_with('\\') {
                rest.find('\'').map(|k| k + 2)
            } else {
                rest.chars()
                    .next()
                    .filter(|c| rest[c.len_utf8()..].starts_with('\''))
                    .map(|c| c.len_utf8() + 2)
            };
            match len {
                Some(n) => i += n,
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            let c = src[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// Every function with a body: (lines, name, first line).
fn functions(src: &str) -> Vec<(usize, String, usize)> {
    let code = blank_literals(src);
    let b = code.as_bytes();
    let mut out = vec![];
    let mut at = 0;
    while let Some(k) = code[at..].find("fn ") {
        let start = at + k;
        at = start + 3;
        if start > 0 && (b[start - 1].is_ascii_alphanumeric() || b[start - 1] == b'_') {
            continue;
        }
        let name: String = code[at..]
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let Some(open) = code[at..].find(['{', ';']).map(|k| at + k) else {
            break;
        };
        if name.is_empty() || b[open] == b';' {
            continue;
        }
        let mut depth = 0;
        let mut end = open;
        for (k, &c) in b.iter().enumerate().skip(open) {
            depth += i32::from(c == b'{') - i32::from(c == b'}');
            if depth == 0 {
                end = k;
                break;
            }
        }
        let line = code[..start].matches('\n').count() + 1;
        let lines = code[start..=end].matches('\n').count() + 1;
        out.push((lines, name, line));
    }
    out
}

#[test]
fn functions_stay_short() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = vec![];
    sources(&src, &mut files);
    let mut long = vec![];
    let mut longest = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        for (lines, name, line) in functions(&text) {
            longest = longest.max(lines);
            if lines > MAX_FN_LINES {
                long.push(format!("{}:{line} {name} ({lines} lines)", f.display()));
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines: split them into named steps:\n{}",
        long.join("\n")
    );
    // The reader sees functions at all: a broken one would pass anything.
    assert!(longest > 40, "longest function found: {longest} lines");
    let probe =
        "fn a() {\n let s = \"}\";\n let c = '{';\n}\nfn b<'x>(v: &'x str) -> &'x str { v }\n";
    let found: Vec<(usize, String)> = functions(probe).into_iter().map(|f| (f.0, f.1)).collect();
    assert_eq!(found, [(4, "a".to_string()), (1, "b".to_string())]);
}
