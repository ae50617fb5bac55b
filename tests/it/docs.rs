//! `docs/cli.md` is generated from clap: the `--help` of every command and
//! subcommand. This test fails when it is stale; regenerate it with
//! `PARATAG_UPDATE_DOCS=1 cargo test --release --test it docs::`.

use std::path::Path;

fn help(path: &[&str]) -> String {
    let mut args: Vec<&str> = path.to_vec();
    args.push("--help");
    let o = super::paratag(&args);
    assert!(o.status.success(), "{path:?}: {}", super::stderr(&o));
    String::from_utf8(o.stdout).unwrap()
}

/// The subcommands a help text lists (its `Commands:` block), less `help`.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        // A command's line is indented two spaces; its wrapped description more.
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|c| c != "help")
        .collect()
}

fn render(path: &mut Vec<String>, out: &mut String) {
    let args: Vec<&str> = path.iter().map(String::as_str).collect();
    let text = help(&args);
    let depth = path.len().min(2) + 1;
    let title = std::iter::once("paratag")
        .chain(args.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    out.push_str(&format!(
        "{} `{title}`\n\n```text\n{}\n```\n\n",
        "#".repeat(depth),
        text.trim_end()
    ));
    for sub in subcommands(&text) {
        path.push(sub);
        render(path, out);
        path.pop();
    }
}

#[test]
fn the_cli_reference_is_generated_and_current() {
    let mut want = String::from(
        "# CLI reference\n\nGenerated from the program's own `--help` (clap) by the test \
         `docs::the_cli_reference_is_generated_and_current`, which fails when this file is \
         stale; regenerate it with `PARATAG_UPDATE_DOCS=1 cargo test --release --test it \
         docs::`. What each option means in practice, with examples, is in \
         [commands.md](commands.md).\n\n",
    );
    render(&mut vec![], &mut want);
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/cli.md");
    if std::env::var_os("PARATAG_UPDATE_DOCS").is_some() {
        std::fs::write(&file, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&file).unwrap_or_default();
    assert!(
        have == want,
        "docs/cli.md is stale: regenerate it with `PARATAG_UPDATE_DOCS=1 cargo test --release --test it docs::`"
    );
    for c in [
        "tag",
        "merge",
        "inspect",
        "sample",
        "eval",
        "calibrate",
        "train",
        "models",
    ] {
        assert!(want.contains(&format!("## `paratag {c}`")), "{c} missing");
    }
    assert!(want.contains("### `paratag models install-profile`"));
}
