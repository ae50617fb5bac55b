//! One file per subcommand: its arguments and how it runs.

pub mod calibrate;
pub mod eval;
pub mod inspect;
pub mod merge;
pub mod models;
pub mod sample;
pub mod tag;
pub mod train;
