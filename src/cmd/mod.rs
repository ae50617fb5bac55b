//! One file per subcommand: its arguments and how it runs.

pub mod calibrate;
pub mod estimate;
pub mod eval;
pub mod inspect;
pub mod merge;
pub mod models;
pub mod sample;
pub mod tag;
pub mod train;

use paratag::choice::Choice;
use std::path::Path;

/// Stops before any work when an output file already exists and `force` is
/// off: a rerun must not silently replace a sheet being labeled, a codebook
/// edited by hand or a report (`None`s are outputs not asked for).
pub fn refuse_existing(outputs: &[Option<&Path>], force: bool) -> anyhow::Result<()> {
    for p in outputs.iter().flatten() {
        if p.is_file() && !force {
            anyhow::bail!(
                "{}: exists; pass --force to replace it (an output is never overwritten silently)",
                p.display()
            );
        }
    }
    Ok(())
}

/// clap's choices for a library enum picked by name ([`Choice`]): the
/// library lists the names and help, so it does not depend on clap.
pub fn choice<T: Choice + Clone + Send + Sync>() -> impl clap::builder::TypedValueParser<Value = T>
{
    use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
    PossibleValuesParser::new(T::CHOICES.iter().map(|&(_, name, help)| {
        let v = PossibleValue::new(name);
        if help.is_empty() {
            v
        } else {
            v.help(help)
        }
    }))
    .try_map(|s| T::from_name(&s).ok_or_else(|| format!("unknown value `{s}`")))
}
