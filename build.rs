//! Embeds `$ORIGIN/../lib` (a release bundle's libraries) and libtorch's
//! library folder as rpaths, so the binary, `cargo test` and an unpacked
//! bundle run without LD_LIBRARY_PATH; and records what the binary was built from
//! (the git commit, and libtorch's version) for the provenance every output
//! carries.
use std::path::Path;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let mut libtorch = "unknown".to_string();
    if let Ok(dir) = std::env::var("LIBTORCH") {
        let lib = std::fs::canonicalize(Path::new(&dir).join("lib"))
            .unwrap_or_else(|_| Path::new(&dir).join("lib"));
        // First `../lib` beside the binary (a release bundle: bin/ and
        // lib/), then the libtorch it was built against (a checkout).
        println!("cargo:rustc-link-arg=-Wl,-rpath,$ORIGIN/../lib");
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
        let version = Path::new(&dir).join("build-version");
        println!("cargo:rerun-if-changed={}", version.display());
        if let Ok(v) = std::fs::read_to_string(&version) {
            libtorch = v.trim().to_string();
        }
    }
    println!("cargo:rustc-env=PARATAG_LIBTORCH={libtorch}");
    // The commit, and `-modified` when tracked files differ from it. Rerun
    // when HEAD moves, the index changes or a source file does, so the
    // record is never older than the code it describes.
    for p in [".git/HEAD", ".git/index", ".git/refs", "src", "Cargo.toml"] {
        if Path::new(p).exists() {
            println!("cargo:rerun-if-changed={p}");
        }
    }
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = match git(&["rev-parse", "HEAD"]) {
        Some(c) if !c.is_empty() => {
            let modified = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if modified {
                format!("{c}-modified")
            } else {
                c
            }
        }
        _ => "unknown".to_string(),
    };
    println!("cargo:rustc-env=PARATAG_COMMIT={commit}");
}
