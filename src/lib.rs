//! paratag's library: each module is one stage of the labeling job, and
//! [`pipeline`] joins them. The binary (`src/main.rs`, `src/cmd/`) is a thin
//! command-line layer over it.

pub mod atomic;
pub mod batch;
pub mod cache;
pub mod calibrate;
pub mod choice;
pub mod codebook;
pub mod dataset;
pub mod dedupe;
pub mod error;
pub mod estimate;
pub mod eval;
pub mod extract;
pub mod formats;
pub mod hash;
pub mod heads;
pub mod home;
pub mod infer;
pub mod input;
pub mod inspect;
pub mod job;
pub mod label;
pub mod lang;
pub mod models;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod provenance;
pub mod record;
pub mod sample;
pub mod scan;
pub mod segment;
pub mod shard;
pub mod table;
pub mod task;
pub mod text;
pub mod tokenize;
pub mod train;

pub use error::{Error, Result};
