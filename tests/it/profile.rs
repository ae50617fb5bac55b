//! Profiles (`models install-profile`, `tag --profile`, the implicit
//! `default`) and `models verify`, each in a model home of its own.

use super::{fixtures, stderr, write};
use std::path::{Path, PathBuf};
use std::process::Output;

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The earlier linear heads (author-only stance): set-up's profile
/// `ukraine-author`.
pub fn author_heads() -> Vec<PathBuf> {
    shipped("ukraine-author").1
}

/// The shipped multi-task model's heads and codebook: set-up's profile
/// `default`.
pub fn default_heads() -> (PathBuf, Vec<PathBuf>) {
    shipped("default")
}

/// A shipped profile's codebook and heads, from models/profiles.toml (the
/// list scripts/setup.sh and scripts/package.sh install).
pub fn shipped(name: &str) -> (PathBuf, Vec<PathBuf>) {
    let text = std::fs::read_to_string(root().join("models/profiles.toml")).unwrap();
    let all: toml::Table = toml::from_str(&text).unwrap();
    let p = all[name].as_table().unwrap();
    let heads = p["heads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| root().join(h.as_str().unwrap()))
        .collect();
    (root().join(p["codebook"].as_str().unwrap()), heads)
}

/// `paratag ARGS` with `PARATAG_HOME=home`, run from `cwd`.
pub fn run_in(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    crate::command()
        .args(args)
        .env("PARATAG_HOME", home)
        .current_dir(cwd)
        .output()
        .expect("run paratag")
}

pub fn install(home: &Path, name: &str, codebook: &Path, heads: &[PathBuf]) -> Output {
    let mut a = vec![
        "models",
        "install-profile",
        name,
        "-c",
        codebook.to_str().unwrap(),
        "--heads",
    ];
    a.extend(heads.iter().map(|h| h.to_str().unwrap()));
    run_in(home, root(), &a)
}

fn one_line_error(o: &Output) -> String {
    let e = stderr(o);
    assert!(!o.status.success(), "expected a failure: {e}");
    assert!(!e.contains("panicked"), "{e}");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    e
}

#[test]
fn profiles_install_list_refuse_and_feed_tag() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    let input = write(
        d.path(),
        "in.jsonl",
        "{\"id\": \"a\", \"text\": \"The parliament approved new military aid to Ukraine on Tuesday, officials said.\"}\n",
    );
    let out = d.path().join("out.parquet");
    let tag = |extra: &[&str]| {
        let mut a = vec!["tag", input.to_str().unwrap(), "-o", out.to_str().unwrap()];
        a.extend_from_slice(extra);
        run_in(&home, d.path(), &a)
    };

    // No profile installed and nothing named: a clear error, no output.
    let e = one_line_error(&tag(&[]));
    assert!(
        e.contains("nothing to tag with") && e.contains("no profile `default`"),
        "{e}"
    );
    assert!(e.contains("scripts/setup.sh"), "{e}");
    assert!(!out.exists());
    // With --no-ner and no profile, tag only segments, as before.
    let o = tag(&["--no-ner", "-q"]);
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::remove_file(&out).unwrap();

    let cb = root().join("datasets/codebooks/ukraine-heads.toml");
    let o = install(&home, "default", &cb, &author_heads());
    assert!(o.status.success(), "{}", stderr(&o));
    let dir = home.join("profiles/default");
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        dir.to_str().unwrap()
    );
    // Copies, not links: the profile outlives the checkout.
    let copied = std::fs::read(dir.join("codebook.toml")).unwrap();
    assert_eq!(copied, std::fs::read(&cb).unwrap());
    for (i, (h, task)) in author_heads()
        .iter()
        .zip(["topic", "stance_ukraine_aid", "entities"])
        .enumerate()
    {
        let c = dir.join(format!("heads/{i}-{task}/head.safetensors"));
        assert!(!std::fs::symlink_metadata(&c).unwrap().is_symlink());
        assert_eq!(
            std::fs::read(&c).unwrap(),
            std::fs::read(h.join("head.safetensors")).unwrap()
        );
    }
    let list = run_in(&home, d.path(), &["models", "list"]);
    let list = String::from_utf8_lossy(&list.stdout).into_owned();
    assert!(
        list.lines().any(|l| l.starts_with("default ")
            && l.contains("profile")
            && l.ends_with("heads: topic, stance_ukraine_aid, entities")),
        "{list}"
    );

    // A broken codebook is refused, and the installed profile stays.
    let bad = write(d.path(), "bad.toml", "[codebook\nname = 1\n");
    let e = one_line_error(&install(&home, "default", &bad, &author_heads()));
    assert!(e.contains("bad.toml"), "{e}");
    assert_eq!(std::fs::read(dir.join("codebook.toml")).unwrap(), copied);
    // Two heads for one task are refused.
    let two = [author_heads()[0].clone(), author_heads()[0].clone()];
    let e = one_line_error(&install(&home, "twice", &cb, &two));
    assert!(e.contains("a second head for `topic`"), "{e}");
    assert!(!home.join("profiles/twice").exists());
    let e = one_line_error(&install(&home, "../up", &cb, &author_heads()));
    assert!(e.contains("profile name `../up`"), "{e}");

    // An unknown profile names the installed ones; a profile does not mix
    // with heads of one's own.
    let e = one_line_error(&tag(&["--profile", "nope"]));
    assert!(
        e.contains("no profile `nope`") && e.contains("installed: default"),
        "{e}"
    );
    let heads = author_heads();
    let o = tag(&[
        "--profile",
        "default",
        "--heads",
        heads[0].to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));

    // With -c, the profile's heads run with that codebook: they refuse an
    // encoder they were not trained on, which shows they were loaded.
    let enc = fixtures::encoder(&d.path().join("enc"));
    let e = one_line_error(&tag(&[
        "--profile",
        "default",
        "-c",
        cb.to_str().unwrap(),
        "--encoder",
        enc.to_str().unwrap(),
    ]));
    assert!(
        e.contains("profiles/default/heads/") && e.contains("sha256"),
        "{e}"
    );

    // Named nothing, tag takes the default profile: its heads refuse an
    // encoder they were not trained on, which shows they were loaded.
    let e = one_line_error(&tag(&["--encoder", enc.to_str().unwrap()]));
    assert!(e.contains("profiles/default/heads/"), "{e}");
    assert!(e.contains("sha256"), "{e}");
    assert!(!out.exists());
}

#[test]
fn verify_rehashes_and_compares_with_the_record() {
    let d = tempfile::tempdir().unwrap();
    let home = d.path().join("home");
    let enc = fixtures::encoder(&home.join("models/enc"));
    let weights = enc.join("model.safetensors");
    let sha = paratag::hash::sha256_file(&weights).unwrap();
    let record = |h: &str| {
        let j = serde_json::json!({"id": "test/enc", "revision": "r1", "sha256": {"model.safetensors": h}});
        std::fs::write(enc.join("paratag-model.json"), j.to_string()).unwrap();
    };
    let verify = || run_in(&home, d.path(), &["models", "verify"]);

    record(&sha);
    let o = verify();
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{s}{}", stderr(&o));
    let want = format!("ok       model.safetensors {sha} (matches the record)");
    assert!(
        s.lines()
            .any(|l| l.starts_with("enc ") && l.ends_with(&want)),
        "{s}"
    );

    // The weights changed after they were recorded.
    record(&"0".repeat(64));
    let o = verify();
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!o.status.success());
    assert!(
        s.contains("MISMATCH") && s.contains(&sha) && s.contains("recorded at download"),
        "{s}"
    );
    assert!(stderr(&o).contains("1 problem(s)"), "{}", stderr(&o));

    // A profile whose heads were trained on an encoder that is not here.
    record(&sha);
    let cb = root().join("datasets/codebooks/ukraine-heads.toml");
    let o = install(&home, "default", &cb, &author_heads()[..1]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = verify();
    let s = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(!o.status.success());
    assert!(
        s.contains("profile default") && s.contains("MISSING  topic"),
        "{s}"
    );
}
