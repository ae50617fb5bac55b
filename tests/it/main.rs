//! Integration tests: one binary (one link against libtorch) for all of them.

mod cli;
mod e5;
mod eval;
mod fetch;
mod fixtures;
mod jobs;
mod multi;
mod profile;
mod props;
mod readers;
mod segment;
mod tagging;
mod train;

use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary, in f32 whatever the CPU (`--dtype auto` picks bf16 where the
/// CPU has AMX), so the tests' figures are the same on every machine.
pub fn command() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_paratag"));
    c.env("PARATAG_DTYPE", "f32");
    c
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
