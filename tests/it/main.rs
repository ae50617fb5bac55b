//! Integration tests: one binary (one link against libtorch) for all of them.

mod bundle;
mod cli;
mod docs;
mod e5;
mod estimate;
mod eval;
mod extract;
mod fetch;
mod fixtures;
mod jobs;
mod layering;
mod multi;
mod profile;
mod props;
mod readers;
mod sample;
mod segment;
mod tagging;
mod train;

use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The dtypes the comparison tests run in. bf16 runs on any x86-64 CPU
/// through libtorch (emulated, slowly, where the CPU lacks it; the fixture
/// models keep that cheap).
pub const DTYPES: [&str; 2] = ["f32", "bf16"];

/// The binary, in `dtype` (through `PARATAG_DTYPE`, so every subcommand gets
/// it), never `auto`: what `auto` picks depends on the CPU, and a test that
/// compares two runs must compare one dtype. This is the one place the tests
/// start the binary (`every_run_names_its_dtype` checks it).
pub fn command_in(dtype: &str) -> Command {
    assert!(DTYPES.contains(&dtype), "a test dtype, not {dtype:?}");
    let mut c = Command::new(env!("CARGO_BIN_EXE_paratag"));
    c.env("PARATAG_DTYPE", dtype);
    c
}

/// The binary in f32, so the tests' figures are the same on every machine.
pub fn command() -> Command {
    command_in("f32")
}

/// No test starts the binary except through [`command_in`], so none
/// inherits `--dtype auto` (whatever it resolves to on this paratag and
/// this CPU) and compares outputs made in dtypes that differ by machine.
#[test]
fn every_run_names_its_dtype() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it");
    let needle = concat!("CARGO_BIN_", "EXE_paratag");
    let mut found = vec![];
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for (i, line) in text.lines().enumerate() {
            if line.contains(needle) {
                found.push(format!("{}:{}", path.display(), i + 1));
            }
            // Nothing may hand the binary `auto` or drop the variable.
            let auto = [
                "\"PARATAG_DTYPE\", \"auto\"",
                "env_remove(\"PARATAG_DTYPE\")",
            ];
            assert!(
                !auto.iter().any(|a| line.contains(a)),
                "{}:{}: a test run with --dtype auto",
                path.display(),
                i + 1
            );
        }
    }
    assert_eq!(
        found.len(),
        1,
        "the binary is started outside command_in: {found:?}"
    );
    assert!(found[0].contains("main.rs"), "{found:?}");
    // And the variable reaches the binary: a run through `command()` records f32.
    let d = tempfile::tempdir().unwrap();
    let input = write(
        d.path(),
        "in.jsonl",
        "{\"id\": \"a\", \"text\": \"One paragraph here.\"}\n",
    );
    let out = d.path().join("o.parquet");
    tag_without_ner(&input, &out);
    let meta = metadata(&out);
    let run: serde_json::Value = serde_json::from_str(&meta["paratag.run"]).unwrap();
    assert_eq!(run["dtype"], "f32", "{run}");
    assert_eq!(run["dtype_requested"], "f32", "{run}");
}

/// A Parquet file's key-value metadata.
pub fn metadata(path: &Path) -> std::collections::BTreeMap<String, String> {
    let mut r = ParquetReader::new(std::fs::File::open(path).unwrap());
    let md = r.get_metadata().unwrap().clone();
    md.key_value_metadata
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|kv| Some((kv.key, kv.value?)))
        .collect()
}

pub fn paratag(args: &[&str]) -> Output {
    command()
        .args(args)
        .env("PARATAG_HOME", home())
        .output()
        .expect("run paratag")
}

/// An empty model home, so tests never pick up models installed on the machine.
pub fn home() -> PathBuf {
    let p = std::env::temp_dir().join(format!("paratag-test-home-{}", std::process::id()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The `models busy N %` figure of `tag`'s summary line.
pub fn models_busy(err: &str) -> f64 {
    err.split("models busy ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no models busy figure: {err}"))
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// `paratag tag IN -o OUT --no-ner -q` in f32, which must succeed; the output.
pub fn tag_without_ner(input: &Path, out: &Path) -> DataFrame {
    tag_without_ner_in("f32", input, out)
}

/// [`tag_without_ner`] in `dtype`.
pub fn tag_without_ner_in(dtype: &str, input: &Path, out: &Path) -> DataFrame {
    let o = command_in(dtype)
        .args([
            "tag",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--no-ner",
            "-q",
        ])
        .env("PARATAG_HOME", home())
        .output()
        .expect("run paratag");
    assert!(o.status.success(), "{}", stderr(&o));
    read(out)
}

pub fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap())
        .finish()
        .unwrap()
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, content).unwrap();
    p
}

pub const CODEBOOK: &str = r#"[codebook]
name = "test"

[topics]
multi_label = true
threshold = 0.5

[[topic]]
id = "aid_to_ukraine"
label = "aid to Ukraine"

[[topic]]
id = "peace_talks"
label = "peace talks"

[[stance]]
id = "ukraine_aid"
target = "further aid to Ukraine"
favor = "The author supports further aid to Ukraine."
against = "The author opposes further aid to Ukraine."
threshold = 0.5
"#;

/// [`CODEBOOK`] with single-label topics at threshold 0.1, so random
/// fixture encoders still pick topics.
pub fn single_label_codebook() -> String {
    CODEBOOK
        .replace("multi_label = true", "multi_label = false")
        .replace(
            "threshold = 0.5\n\n[[topic]]",
            "threshold = 0.1\n\n[[topic]]",
        )
}
