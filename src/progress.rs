//! Progress for long jobs: a bar on a terminal, a plain line every 30
//! seconds in a batch log (stderr not a terminal), nothing with `--quiet`.
//!
//! The log line is `paratag: 1200/~4100 paragraphs, 45.1/s, ETA 1m 4s`; the
//! interval is `PARATAG_PROGRESS_SECONDS` (default 30).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Log,
    Quiet,
}

impl Mode {
    /// A bar on a terminal, log lines otherwise, nothing when `quiet`.
    pub fn auto(quiet: bool) -> Mode {
        match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Bar,
            (false, false) => Mode::Log,
        }
    }
}

struct Log {
    start: Instant,
    last: Instant,
    every: Duration,
}

/// Counts units of work (`what`: "paragraphs", "steps") against a total
/// that may be an estimate (shown as `~N`).
pub struct Progress {
    bar: indicatif::ProgressBar,
    log: Option<Mutex<Log>>,
    what: &'static str,
    estimate: bool,
}

impl Progress {
    pub fn new(mode: Mode, what: &'static str, estimate: bool) -> Progress {
        use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
        let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
        if mode != Mode::Bar {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        let len = if estimate { "~{len}" } else { "{len}" };
        bar.set_style(
            ProgressStyle::with_template(&format!(
                "{{bar:40}} {{pos}}/{len} {what}  {{per_sec}}  {{msg}}  ETA {{eta}}"
            ))
            .expect("static template"),
        );
        let every = std::env::var("PARATAG_PROGRESS_SECONDS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(30.0);
        let log = (mode == Mode::Log).then(|| {
            let now = Instant::now();
            Mutex::new(Log {
                start: now,
                last: now,
                every: Duration::from_secs_f64(every.max(0.0)),
            })
        });
        Progress {
            bar,
            log,
            what,
            estimate,
        }
    }

    pub fn set_length(&self, n: u64) {
        self.bar.set_length(n);
    }

    pub fn set_message(&self, m: String) {
        self.bar.set_message(m);
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
        if let Some(log) = &self.log {
            let mut l = log.lock().expect("progress lock");
            if l.last.elapsed() >= l.every {
                l.last = Instant::now();
                eprintln!("paratag: {}", self.line(l.start.elapsed()));
            }
        }
    }

    fn line(&self, took: Duration) -> String {
        let (done, total) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let rate = done as f64 / took.as_secs_f64().max(1e-9);
        let eta = if rate > 0.0 && total > done {
            let s = ((total - done) as f64 / rate) as u64;
            format!(", ETA {}m {}s", s / 60, s % 60)
        } else {
            String::new()
        };
        let tilde = if self.estimate { "~" } else { "" };
        let msg = self.bar.message();
        let msg = if msg.is_empty() {
            String::new()
        } else {
            format!(", {msg}")
        };
        format!("{done}/{tilde}{total} {}, {rate:.1}/s{eta}{msg}", self.what)
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
