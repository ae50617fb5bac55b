//! One file per subcommand: its arguments and how it runs.

pub mod models;
pub mod tag;
