//! Embeds libtorch's library folder as an rpath, so the binary and `cargo test`
//! run without LD_LIBRARY_PATH.
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        let lib = std::fs::canonicalize(std::path::Path::new(&dir).join("lib"))
            .unwrap_or_else(|_| std::path::Path::new(&dir).join("lib"));
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
