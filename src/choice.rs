//! Settings a user picks by name (`--input-format csv`, `--dtype bf16`),
//! without the library depending on the CLI: each such enum lists its
//! names and help once, and `cmd/` turns the list into clap's choices.

/// An enum picked by name.
pub trait Choice: Sized + Copy + PartialEq + 'static {
    /// Every variant with its name and a help line (empty for none), in the
    /// order the help lists them.
    const CHOICES: &'static [(Self, &'static str, &'static str)];

    /// Its name, as the command line spells it.
    fn name(self) -> &'static str {
        Self::CHOICES
            .iter()
            .find(|c| c.0 == self)
            .map_or("", |c| c.1)
    }

    /// The variant a name picks.
    fn from_name(name: &str) -> Option<Self> {
        Self::CHOICES.iter().find(|c| c.1 == name).map(|c| c.0)
    }
}
