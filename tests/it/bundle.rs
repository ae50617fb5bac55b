//! The release bundle (scripts/package.sh), unpacked in a new folder and run
//! with HOME elsewhere and no PARATAG_HOME, tags the README example with the
//! same labels as target/release/paratag with the same default profile.

use super::e5::default_home;
use super::profile::root;
use super::{read, stderr};
use std::path::Path;
use std::process::Command;

#[test]
fn an_unpacked_bundle_tags_the_readme_example_like_the_build() {
    let t = tempfile::tempdir().unwrap();
    let dist = t.path().join("dist");
    let o = Command::new(root().join("scripts/package.sh"))
        .arg(&dist)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let packed = std::fs::read_dir(&dist)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".tar."))
        .expect("a bundle");
    let unpacked = t.path().join("somewhere else");
    std::fs::create_dir_all(&unpacked).unwrap();
    let o = Command::new("tar")
        .arg("-C")
        .arg(&unpacked)
        .arg("-xaf")
        .arg(&packed)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let name = packed.file_name().unwrap().to_str().unwrap();
    let bundle = unpacked.join(&name[..name.find(".tar.").unwrap()]);
    let bin = bundle.join("bin/paratag");

    // It never names the build machine's libtorch; the loader finds every
    // torch library in the bundle's lib/.
    let built_against = std::fs::canonicalize(root().join(".libtorch/lib")).unwrap();
    let bytes = std::fs::read(&bin).unwrap();
    let needle = built_against.to_string_lossy();
    assert!(
        !bytes.windows(needle.len()).any(|w| w == needle.as_bytes()),
        "the bundle's binary still names {needle}"
    );
    let ldd = Command::new("ldd").arg(&bin).output().unwrap();
    let ldd = String::from_utf8_lossy(&ldd.stdout).into_owned();
    // Match on the library's name only: the load address in parentheses is
    // random and can itself contain "c10" (CI once failed on ld-linux's).
    let mut torch_libs = 0;
    for line in ldd.lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        if name.contains("torch") || name.contains("c10") {
            torch_libs += 1;
            let resolved = line.split("=>").nth(1).unwrap_or("");
            assert!(resolved.contains(&*bundle.to_string_lossy()), "{line}");
        }
    }
    assert!(torch_libs > 0, "ldd names no torch library:\n{ldd}");
    // Nor is any other library (libgomp, the CUDA stubs) found in the
    // build's libtorch.
    assert!(!ldd.contains(&*needle), "{ldd}");

    let example = root().join("datasets/example");
    let home = t.path().join("elsewhere");
    // PARATAG_HOME still overrides the bundle's store: an empty one has no
    // default profile.
    let empty = t.path().join("empty-home");
    let o = Command::new(&bin)
        .args(["tag", example.to_str().unwrap(), "-o", "x.parquet", "-q"])
        .env("PARATAG_HOME", &empty)
        .current_dir(t.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no profile `default`"),
        "{}",
        stderr(&o)
    );

    // Each test dtype: the bundle (empty environment, HOME elsewhere)
    // against the build with the same default profile.
    let (_keep, store) = default_home();
    for dtype in super::DTYPES {
        let out = t.path().join(format!("bundle-{dtype}.parquet"));
        let o = Command::new(&bin)
            .args([
                "tag",
                example.to_str().unwrap(),
                "-o",
                out.to_str().unwrap(),
                "-q",
            ])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &home)
            .env("PARATAG_DTYPE", dtype)
            .current_dir(t.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{dtype}: {}", stderr(&o));
        let reference = t.path().join(format!("build-{dtype}.parquet"));
        let o = super::command_in(dtype)
            .args([
                "tag",
                example.to_str().unwrap(),
                "-o",
                reference.to_str().unwrap(),
                "-q",
            ])
            .env("PARATAG_HOME", &store)
            .output()
            .unwrap();
        assert!(o.status.success(), "{dtype}: {}", stderr(&o));
        same_labels(&out, &reference);
    }
    // The bundle wrote nothing into its own store (caches go to HOME).
    assert!(!bundle.join("share/paratag/cache").exists());
}

fn same_labels(a: &Path, b: &Path) {
    let (a, b) = (read(a), read(b));
    assert_eq!(a.height(), b.height());
    let labels: Vec<String> = b
        .get_column_names()
        .iter()
        .map(|c| c.to_string())
        .filter(|c| {
            c == "lang" || c.starts_with("topic") || c.starts_with("stance_") || c == "entities"
        })
        .collect();
    assert!(labels.len() >= 8, "{labels:?}");
    for c in &labels {
        assert!(
            a.column(c).unwrap().equals_missing(b.column(c).unwrap()),
            "{c} differs"
        );
    }
}
