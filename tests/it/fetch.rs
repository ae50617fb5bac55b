//! `paratag models fetch` against a local stand-in for the Hugging Face hub
//! (the real hub is unreachable here): the same `resolve/<rev>/<file>` URLs,
//! range requests and etag / x-repo-commit headers that hf-hub reads.

use super::fixtures;
use super::*;
use std::collections::HashMap;
use std::sync::Arc;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

/// Serves `files` (URL path -> bytes) until the returned server is dropped.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<tiny_http::Server>) {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let addr = format!("http://{}", server.server_addr().to_ip().unwrap());
    let s = server.clone();
    std::thread::spawn(move || {
        for req in s.incoming_requests() {
            let Some(body) = files.get(req.url()) else {
                let _ = req.respond(tiny_http::Response::empty(404));
                continue;
            };
            let range = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("Range"))
                .map(|h| h.value.as_str().to_string());
            let (from, to) = match range.as_deref().and_then(|r| r.strip_prefix("bytes=")) {
                Some(r) => {
                    let (a, b) = r.split_once('-').unwrap();
                    let a: usize = a.parse().unwrap();
                    let b = if b.is_empty() {
                        body.len().saturating_sub(1)
                    } else {
                        b.parse().unwrap()
                    };
                    (a, b.min(body.len().saturating_sub(1)))
                }
                None => (0, body.len().saturating_sub(1)),
            };
            let chunk = if body.is_empty() {
                vec![]
            } else {
                body[from..=to].to_vec()
            };
            let etag = format!("\"{}\"", paratag::hash::sha256_bytes(body));
            let h = |k: &str, v: &str| {
                tiny_http::Header::from_bytes(k.as_bytes(), v.as_bytes()).unwrap()
            };
            let resp = tiny_http::Response::from_data(chunk)
                .with_status_code(206)
                .with_header(h("etag", &etag))
                .with_header(h("x-repo-commit", COMMIT))
                .with_header(h(
                    "content-range",
                    &format!("bytes {from}-{to}/{}", body.len()),
                ));
            let _ = req.respond(resp);
        }
    });
    (addr, server)
}

#[test]
fn fetch_downloads_checks_hashes_and_installs() {
    let d = tempfile::tempdir().unwrap();
    let model = fixtures::encoder(&d.path().join("src"));
    let mut files = HashMap::new();
    let mut sums = HashMap::new();
    for f in ["config.json", "tokenizer.json", "model.safetensors"] {
        let bytes = std::fs::read(model.join(f)).unwrap();
        sums.insert(f, paratag::hash::sha256_bytes(&bytes));
        files.insert(format!("/org/tiny-encoder/resolve/main/{f}"), bytes);
    }
    let (endpoint, _server) = serve(files);
    let registry = |sum_for_weights: &str| {
        format!(
            "[models.tiny]\nrole = \"encoder\"\nrepo = \"org/tiny-encoder\"\nrevision = \"main\"\nfiles = [\n  {{ name = \"config.json\", sha256 = \"{}\" }},\n  {{ name = \"tokenizer.json\" }},\n  {{ name = \"model.safetensors\", sha256 = \"{sum_for_weights}\" }},\n]\n",
            sums["config.json"]
        )
    };
    let home = d.path().join("home");
    let run = |reg: &Path| {
        crate::command()
            .args([
                "models",
                "fetch",
                "tiny",
                "--registry",
                reg.to_str().unwrap(),
                "--endpoint",
                &endpoint,
            ])
            .env("PARATAG_HOME", &home)
            .output()
            .unwrap()
    };

    // A pinned hash that does not match is refused and nothing is installed.
    let bad = write(d.path(), "bad.toml", &registry(&"0".repeat(64)));
    let o = run(&bad);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("sha256 mismatch") && stderr(&o).contains("model.safetensors"),
        "{}",
        stderr(&o)
    );
    assert!(!home.join("models/tiny").exists());

    let good = write(d.path(), "good.toml", &registry(&sums["model.safetensors"]));
    let o = run(&good);
    assert!(o.status.success(), "{}", stderr(&o));
    let installed = home.join("models/tiny");
    let dir = paratag::models::ModelDir::open(&installed).unwrap();
    assert_eq!(dir.id, "org/tiny-encoder");
    assert_eq!(dir.revision, COMMIT);
    let prov: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(installed.join("paratag-model.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        prov["sha256"]["tokenizer.json"],
        sums["tokenizer.json"].as_str()
    );

    // The installed name now works as a model argument.
    let input = write(d.path(), "in.jsonl", "{\"id\": \"a\", \"text\": \"Officials said the aid package was approved after a long debate.\"}\n");
    let cb = write(d.path(), "cb.toml", CODEBOOK);
    let out = d.path().join("o.parquet");
    let o = crate::command()
        .args([
            "tag",
            input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-c",
            cb.to_str().unwrap(),
            "--encoder",
            "tiny",
            "--no-ner",
            "-q",
        ])
        .env("PARATAG_HOME", &home)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let df = read(&out);
    assert_eq!(df.height(), 1);
}
