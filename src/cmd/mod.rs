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
