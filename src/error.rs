//! Library error type. Every variant renders as one line that names the file,
//! line, row or key at fault, because users run paratag in batch jobs and read
//! the error in a log.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The message holds the cause, so it is not also a `source` (which
    /// would print it twice in a one-line error chain).
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    /// Bad input data: `location` is `file:line` (or `file: row N`).
    #[error("{location}: {message}")]
    Input { location: String, message: String },
    /// A TOML file (codebook, registry) at fault: `file:line: message`.
    #[error("{path}:{line}: {message}")]
    Toml {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("model {path}: {message}")]
    Model { path: PathBuf, message: String },
    #[error("{0}")]
    Config(String),
    #[error("torch: {0}")]
    Torch(#[from] tch::TchError),
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("output {path}: {message}")]
    Output { path: PathBuf, message: String },
    #[error("polars: {0}")]
    Polars(#[from] polars::error::PolarsError),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            cause: source,
        }
    }
    pub fn input(location: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Input {
            location: location.into(),
            message: message.into(),
        }
    }
    pub fn model(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Model {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl Error {
    /// Error at byte offset `byte` of `text`, reported by its 1-based line.
    pub fn toml_at(
        path: &std::path::Path,
        text: &str,
        byte: usize,
        message: impl Into<String>,
    ) -> Self {
        let end = byte.min(text.len());
        Error::Toml {
            path: path.into(),
            line: text.as_bytes()[..end]
                .iter()
                .filter(|&&b| b == b'\n')
                .count()
                + 1,
            message: message.into(),
        }
    }

    /// A TOML syntax or schema error, on one line.
    pub fn toml(path: &std::path::Path, text: &str, e: &toml::de::Error) -> Self {
        let byte = e.span().map_or(0, |s| s.start);
        Self::toml_at(path, text, byte, e.message().trim().replace('\n', " "))
    }
}

impl From<tokenizers::Error> for Error {
    fn from(e: tokenizers::Error) -> Self {
        Error::Tokenizer(e.to_string())
    }
}

impl From<rust_bert::RustBertError> for Error {
    fn from(e: rust_bert::RustBertError) -> Self {
        Error::Config(format!("rust-bert: {e}"))
    }
}
