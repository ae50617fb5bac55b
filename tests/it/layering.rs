//! The house's layering, read from the source: the library's modules import
//! each other without circles, and the CLI crate (clap) stays in `src/cmd/`
//! and `src/main.rs`.

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
