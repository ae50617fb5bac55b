//! Jobs that scale: dataset folders, `kill -9` and `--resume`, a full disk,
//! corrupted parts, changed settings, shards and `merge`, with tiny fixture
//! models so every run takes a second or two.

use super::fixtures::{self, NER_LABELS};
use super::*;
use rand::{Rng, SeedableRng};
use std::process::{Child, Command as Proc, Stdio};
use std::time::Instant;

struct Setup {
    /// `--dtype` of every run (`PARATAG_DTYPE`).
    dtype: &'static str,
    dir: tempfile::TempDir,
    input: PathBuf,
    cb: PathBuf,
    enc: PathBuf,
    ner: PathBuf,
}

const CHROME: &str = "Follow us on Telegram, X and Facebook for the latest updates.";

/// `n` articles of 3 to 6 paragraphs in several scripts, with site chrome
/// repeated on every page (dropped by the repeat index) and a tail marker;
/// runs in f32.
fn setup(n: usize) -> Setup {
    setup_in(n, "f32")
}

fn setup_in(n: usize, dtype: &'static str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let bodies = [
        "The parliament approved new military aid to Ukraine on Tuesday, officials said.",
        "قال وزير الخارجية إن بلاده ستواصل تقديم المساعدات إلى أوكرانيا، وفق بيان رسمي.",
        "Министр заявил, что переговоры продолжатся в Женеве на следующей неделе.",
        "Уряд України повідомив про нову допомогу з Києва 🇺🇦, за словами речника.",
        "Le ministre e\u{301}tait a\u{300} Kiev; il a annoncé une aide, selon l'AFP.",
        "Die Bundesregierung liefert weitere Waffen an die Ukraine, sagte ein Sprecher.",
    ];
    let mut lines = String::new();
    for a in 0..n {
        let k = 3 + a % 4;
        let mut text = format!("{CHROME}\n\n");
        for p in 0..k {
            let b = bodies[(a + p) % bodies.len()];
            text += &format!(
                "{b} Report {a}.{p} adds detail{}.\n\n",
                ", and more".repeat(p % 3)
            );
        }
        text +=
            "Comments\nA reader wrote something long enough to be a paragraph, with punctuation.";
        lines += &serde_json::json!({"id": format!("art-{a:04}"), "text": text, "desk": a % 3})
            .to_string();
        lines.push('\n');
    }
    let input = write(dir.path(), "corpus.jsonl", &lines);
    let cb = write(dir.path(), "cb.toml", &single_label_codebook());
    let enc = fixtures::encoder(&dir.path().join("enc"));
    let ner = fixtures::ner(&dir.path().join("ner"), NER_LABELS, 1);
    Setup {
        dtype,
        dir,
        input,
        cb,
        enc,
        ner,
    }
}

impl Setup {
    fn args(&self, out: &Path, extra: &[&str]) -> Vec<String> {
        let mut a: Vec<String> = [
            "tag",
            self.input.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "-c",
            self.cb.to_str().unwrap(),
            "--encoder",
            self.enc.to_str().unwrap(),
            "--ner",
            self.ner.to_str().unwrap(),
            "-q",
        ]
        .map(String::from)
        .to_vec();
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    }

    fn command(&self, out: &Path, extra: &[&str]) -> Proc {
        let mut c = command_in(self.dtype);
        c.args(self.args(out, extra)).env("PARATAG_HOME", home());
        c
    }

    fn tag(&self, out: &Path, extra: &[&str]) -> Output {
        self.command(out, extra).output().unwrap()
    }

    fn ok(&self, out: &Path, extra: &[&str]) -> DataFrame {
        let o = self.tag(out, extra);
        assert!(o.status.success(), "{}", stderr(&o));
        table(out)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A file, or a complete dataset folder's parts (as its manifest lists
/// them: committed, or pending for a shard not yet merged) read as one
/// table, sorted by (article_id, paragraph). What readers that glob see is
/// `polars_reads_dataset_folders_as_one_table`'s concern.
fn table(path: &Path) -> DataFrame {
    let files = if path.is_dir() {
        paratag::dataset::part_files(path).unwrap()
    } else {
        vec![path.to_path_buf()]
    };
    let mut all: Option<DataFrame> = None;
    for f in files {
        let df = read(&f);
        match &mut all {
            None => all = Some(df),
            Some(a) => {
                a.vstack_mut(&df).unwrap();
            }
        }
    }
    all.expect("at least one part")
        .sort(["article_id", "paragraph"], Default::default())
        .unwrap()
}

/// Rows that appear more than once by (article_id, paragraph).
fn duplicates(df: &DataFrame) -> usize {
    let ids = df.column("article_id").unwrap().str().unwrap().clone();
    let ps = df.column("paragraph").unwrap().u32().unwrap().clone();
    let keys: std::collections::HashSet<(String, u32)> = ids
        .iter()
        .zip(ps.iter())
        .map(|(a, p)| (a.unwrap().to_string(), p.unwrap()))
        .collect();
    df.height() - keys.len()
}

pub fn assert_same(what: &str, a: &DataFrame, b: &DataFrame) {
    assert_eq!(a.height(), b.height(), "{what}: row count");
    assert_eq!(
        a.get_column_names(),
        b.get_column_names(),
        "{what}: columns"
    );
    for c in a.get_column_names() {
        let (x, y) = (a.column(c).unwrap(), b.column(c).unwrap());
        assert!(
            x.as_materialized_series()
                .equals_missing(y.as_materialized_series()),
            "{what}: column {c} differs"
        );
    }
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("_manifest.json")).unwrap()).unwrap()
}

/// Every part the manifest lists is on disk with its recorded sha256.
fn parts_intact(dir: &Path) -> usize {
    let m = manifest(dir);
    let parts = m["parts"].as_array().unwrap();
    for p in parts {
        let f = paratag::dataset::locate(dir, p["file"].as_str().unwrap()).unwrap();
        assert_eq!(
            paratag::hash::sha256_file(&f).unwrap(),
            p["sha256"].as_str().unwrap(),
            "{}",
            f.display()
        );
    }
    parts.len()
}

#[test]
fn dataset_folder_equals_a_single_file_for_any_window() {
    let s = setup(40);
    let file = s.ok(&s.path("one.parquet"), &[]);
    assert!(file.height() > 100);
    assert_eq!(duplicates(&file), 0);
    // The chrome line repeats on every page: never a row.
    let texts = file.column("text").unwrap().str().unwrap().clone();
    assert!(texts.iter().all(|t| t.unwrap() != CHROME));
    for (name, extra) in [
        ("w1", vec!["--window", "1", "--chunk-rows", "9"]),
        (
            "w7",
            vec![
                "--window",
                "7",
                "--chunk-rows",
                "25",
                "--batch-tokens",
                "100",
            ],
        ),
        ("w1000/", vec!["--window", "1000", "--threads", "1"]),
    ] {
        let out = s.path(name);
        let df = s.ok(&out, &extra);
        assert_same(name, &file, &df);
        let m = manifest(&out);
        assert_eq!(m["complete"], true);
        assert_eq!(m["articles"], 40);
        let n = parts_intact(&out);
        let rows: u64 = m["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rows"].as_u64().unwrap())
            .sum();
        assert_eq!(rows as usize, file.height());
        if name == "w1" {
            assert!(n > 10, "{n} parts of about 9 rows");
        }
        // Every part carries the provenance, and its own place in the job.
        let part = out.join(m["parts"][0]["file"].as_str().unwrap());
        let kv: Vec<String> = metadata(&part).into_keys().collect();
        for k in [
            "paratag.models",
            "paratag.codebook",
            "paratag.inputs",
            "paratag.part",
            "paratag.summary",
        ] {
            assert!(
                kv.iter().any(|x| x == k),
                "{k} missing from {}",
                part.display()
            );
        }
    }
    // `sample` reads a dataset folder like a table.
    let sheet = s.path("sheet.csv");
    let o = paratag(&[
        "sample",
        s.path("w1").to_str().unwrap(),
        "-n",
        "5",
        "-o",
        sheet.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// The job is killed with SIGKILL at 20 seeded random moments, then resumed;
/// every resumed dataset equals the uninterrupted run: no row lost, none twice.
#[test]
fn sigkill_at_twenty_random_points_then_resume_loses_nothing() {
    let s = setup(160);
    let reference = s.ok(&s.path("ref.parquet"), &[]);
    let extra = ["--chunk-rows", "6", "--window", "4", "--threads", "1"];
    // How long an uninterrupted dataset run takes, to aim the kills.
    let t = Instant::now();
    let full = s.ok(&s.path("full"), &extra);
    let took = t.elapsed();
    assert_same("uninterrupted dataset", &reference, &full);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(20);
    let (mut identical, mut mid_run) = (0, 0);
    let mut report = vec![];
    for trial in 0..20 {
        let out = s.path(&format!("kill-{trial}"));
        let delay = took.mul_f64(rng.gen_range(0.02..0.98));
        let mut child: Child = s
            .command(&out, &extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        let finished = child.try_wait().unwrap().is_some();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let parts = if out.join("_manifest.json").exists() {
            let m = manifest(&out);
            if m["complete"] == true {
                -1
            } else {
                parts_intact(&out) as i64
            }
        } else {
            0
        };
        if !finished && parts > 0 {
            mid_run += 1;
        }
        let mut resume = extra.to_vec();
        resume.push("--resume");
        let got = s.ok(&out, &resume);
        let twice = duplicates(&got);
        let lost = reference.height() as i64 - (got.height() - twice) as i64;
        assert_eq!(
            (lost, twice),
            (0, 0),
            "trial {trial}: rows lost, duplicated"
        );
        assert_same(&format!("trial {trial}"), &reference, &got);
        parts_intact(&out);
        identical += 1;
        report.push(format!("{:.0}ms:{parts}", delay.as_secs_f64() * 1e3));
    }
    eprintln!(
        "sigkill: {identical} of 20 resumed runs identical ({} rows each, 0 lost, 0 duplicated); {mid_run} killed with some parts written; kill time:parts on disk = {}",
        reference.height(),
        report.join(" ")
    );
    assert!(mid_run >= 3, "too few kills landed mid-run: {report:?}");
}

/// Runs `tag` with the size of any file it writes limited to `limit` bytes
/// (RLIMIT_FSIZE, SIGXFSZ ignored: writes fail with EFBIG, as on a full disk).
fn tag_with_file_limit(s: &Setup, out: &Path, extra: &[&str], limit: u64) -> Output {
    use std::os::unix::process::CommandExt;
    let mut c = s.command(out, extra);
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        c.pre_exec(move || {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            let l = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &l) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c.output().unwrap()
}

#[test]
fn a_full_disk_stops_with_a_clear_error_and_resumes() {
    let s = setup(60);
    let extra = ["--chunk-rows", "4", "--window", "3"];
    let reference = s.ok(&s.path("ref"), &extra);
    let m = manifest(&s.path("ref"));
    let parts = m["parts"].as_array().unwrap();
    let biggest = parts
        .iter()
        .map(|p| p["bytes"].as_u64().unwrap())
        .max()
        .unwrap();
    let manifest_size = std::fs::metadata(s.path("ref/_manifest.json"))
        .unwrap()
        .len();
    // Parts fit under the limit; the manifest outgrows it part way through.
    let limit = biggest + 1024;
    assert!(
        manifest_size > limit,
        "{manifest_size} <= {limit}: corpus too small"
    );
    for (name, limit) in [("manifest-full", limit), ("part-full", biggest / 2)] {
        let out = s.path(name);
        let o = tag_with_file_limit(&s, &out, &extra, limit);
        let err = stderr(&o);
        assert!(!o.status.success(), "{name}: the limit must stop the run");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: one line: {err}");
        assert!(
            err.contains("File too large") && err.contains("--resume"),
            "{name}: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        // Whatever the manifest lists is whole.
        let written = parts_intact(&out);
        if name == "manifest-full" {
            assert!(written > 0, "some parts before the manifest filled up");
        }
        let mut resume = extra.to_vec();
        resume.push("--resume");
        let got = s.ok(&out, &resume);
        assert_same(name, &reference, &got);
        // Parts renamed but never recorded were removed, not kept twice.
        assert_eq!(duplicates(&got), 0);
        assert_eq!(
            parts_intact(&out),
            std::fs::read_dir(&out)
                .unwrap()
                .filter(|e| e
                    .as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".parquet"))
                .count()
        );
    }
}

#[test]
fn a_corrupted_part_is_found_and_redone() {
    let s = setup(30);
    let extra = ["--chunk-rows", "10"];
    let out = s.path("ds");
    let reference = s.ok(&out, &extra);
    let m = manifest(&out);
    let victim = out.join(m["parts"][1]["file"].as_str().unwrap());
    let mut bytes = std::fs::read(&victim).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x55;
    std::fs::write(&victim, bytes).unwrap();
    let o = s.tag(&out, &["--chunk-rows", "10", "--resume"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let got = table(&out);
    assert_same("after redoing the corrupted part", &reference, &got);
    parts_intact(&out);
    // Without -q the redone part is named.
    let again = s.path("ds2");
    s.ok(&again, &extra);
    let m = manifest(&again);
    let victim = again.join(m["parts"][0]["file"].as_str().unwrap());
    std::fs::write(&victim, b"not parquet").unwrap();
    let mut args = s.args(&again, &["--chunk-rows", "10", "--resume"]);
    args.retain(|a| a != "-q");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = paratag(&args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("part-00000.parquet: missing or its sha256 changed"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn resume_refuses_other_settings_unless_forced() {
    let s = setup(12);
    let out = s.path("ds");
    s.ok(&out, &["--chunk-rows", "5"]);
    // Without --resume an existing dataset is never touched.
    let o = s.tag(&out, &["--chunk-rows", "5"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("pass --resume"), "{}", stderr(&o));
    // Another codebook: refused, naming what differs.
    let cb2 = write(
        s.dir.path(),
        "cb2.toml",
        &std::fs::read_to_string(&s.cb)
            .unwrap()
            .replace("threshold = 0.1", "threshold = 0.2"),
    );
    let mut args = s.args(&out, &["--chunk-rows", "5", "--resume", "--no-ner"]);
    let i = args
        .iter()
        .position(|a| *a == s.cb.to_str().unwrap())
        .unwrap();
    args[i] = cb2.to_str().unwrap().to_string();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let o = paratag(&refs);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("cannot resume") && err.contains("codebook_sha256") && err.contains("tasks"),
        "{err}"
    );
    let mut forced = refs.clone();
    forced.push("--force");
    assert!(paratag(&forced).status.success());
    // A non-empty folder that is not a dataset is refused.
    let other = s.path("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("notes.txt"), "mine").unwrap();
    let o = s.tag(&other, &["--chunk-rows", "5"]);
    assert!(stderr(&o).contains("is not empty"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(other.join("notes.txt")).unwrap(),
        "mine"
    );
    // A single-file output cannot be resumed.
    let o = s.tag(&s.path("x.parquet"), &["--resume"]);
    assert!(
        stderr(&o).contains("--resume continues a dataset folder"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn four_shards_and_merge_equal_a_single_run() {
    let s = setup(50);
    let reference = s.ok(&s.path("one.parquet"), &[]);
    let out = s.path("sharded");
    let mut per_shard = vec![];
    for k in 0..4 {
        let spec = format!("{k}/4");
        let o = s.tag(&out, &["--shard", &spec, "--chunk-rows", "20"]);
        assert!(o.status.success(), "{}", stderr(&o));
        per_shard.push(table(&out.join(format!("shard-{k}-of-4"))).height());
    }
    assert!(per_shard.iter().all(|&n| n > 0), "{per_shard:?}");
    let o = paratag(&["merge", out.to_str().unwrap(), "--verify"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("merged 4 shards"), "{}", stderr(&o));
    let m = manifest(&out);
    assert_eq!(m["articles"], 50);
    assert_eq!(m["shards"], 4);
    assert_same("4 shards", &reference, &table(&out));
    // sample reads the merged dataset.
    let o = paratag(&[
        "sample",
        out.to_str().unwrap(),
        "-n",
        "3",
        "-o",
        s.path("m.csv").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));

    // --shard auto: Slurm's array variables, and Kubernetes' completion index.
    let auto = s.path("auto");
    for k in 0..4u32 {
        let mut c = s.command(&auto, &["--shard", "auto", "--chunk-rows", "20"]);
        if k % 2 == 0 {
            c.env("SLURM_ARRAY_TASK_ID", (k + 1).to_string())
                .env("SLURM_ARRAY_TASK_MIN", "1")
                .env("SLURM_ARRAY_TASK_COUNT", "4");
        } else {
            c.env("JOB_COMPLETION_INDEX", k.to_string())
                .args(["--shards", "4"]);
        }
        let o = c.output().unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert_same(
            &format!("auto shard {k}"),
            &table(&out.join(format!("shard-{k}-of-4"))),
            &table(&auto.join(format!("shard-{k}-of-4"))),
        );
    }
    let o = s
        .command(&auto, &["--shard", "auto"])
        .env("JOB_COMPLETION_INDEX", "1")
        .output()
        .unwrap();
    assert!(stderr(&o).contains("needs --shards N"), "{}", stderr(&o));

    // merge refuses a missing, unfinished or differently made shard.
    std::fs::rename(auto.join("shard-3-of-4"), s.path("away")).unwrap();
    let o = paratag(&["merge", auto.to_str().unwrap()]);
    assert!(
        stderr(&o).contains("missing shard-3-of-4"),
        "{}",
        stderr(&o)
    );
    let o = s.tag(&auto, &["--shard", "3/4", "--chunk-rows", "20", "--no-ner"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = paratag(&["merge", auto.to_str().unwrap()]);
    let err = stderr(&o);
    assert!(!o.status.success());
    assert!(
        err.contains("other settings") && err.contains("tasks"),
        "{err}"
    );
}

/// Python polars (installed by scripts/setup.sh) reads a dataset folder, and
/// a sharded one, as one table equal to the single-file run, with the
/// provenance in every part.
#[test]
fn polars_reads_dataset_folders_as_one_table() {
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join(".pyenv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run scripts/setup.sh",
        py.display()
    );
    let s = setup(24);
    s.ok(&s.path("one.parquet"), &[]);
    s.ok(&s.path("ds"), &["--chunk-rows", "10"]);
    for k in 0..3 {
        let spec = format!("{k}/3");
        let o = s.tag(&s.path("sh"), &["--shard", &spec, "--chunk-rows", "10"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // Shards are not visible until merged.
    for k in 0..3 {
        let spec = format!("{k}/3");
        let o = s.tag(
            &s.path("unmerged"),
            &["--shard", &spec, "--chunk-rows", "10"],
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    assert!(paratag(&["merge", s.path("sh").to_str().unwrap()])
        .status
        .success());
    // A job killed once some parts were written.
    let killed = s.path("killed");
    let extra = ["--chunk-rows", "3", "--window", "1", "--threads", "1"];
    assert!(kill_after_first_part(&s, &killed, &extra), "killed mid-run");
    let script = r#"
import sys, polars as pl
one, ds, sh, killed, unmerged = sys.argv[1:6]
want = pl.read_parquet(one).sort("article_id", "paragraph")
for glob in (f"{ds}/*.parquet", f"{sh}/*/*.parquet"):
    got = pl.scan_parquet(glob).collect().sort("article_id", "paragraph")
    assert got.equals(want), glob
    files = sorted(__import__("glob").glob(glob))
    for f in files:
        meta = pl.read_parquet_metadata(f)
        assert "paratag.models" in meta and "paratag.part" in meta, f
    print(glob, got.height, "rows in", len(files), "parts")
# An incomplete dataset reads as no table, never as a smaller one.
for glob in (f"{killed}/*.parquet", f"{killed}/**/*.parquet", f"{unmerged}/*/*.parquet", f"{unmerged}/**/*.parquet"):
    try:
        n = pl.scan_parquet(glob).collect().height
    except Exception:
        print(glob, "refused")
    else:
        raise SystemExit(f"{glob}: read {n} rows of an incomplete dataset")
"#;
    let o = Proc::new(&py)
        .args(["-c", script])
        .args([
            s.path("one.parquet"),
            s.path("ds"),
            s.path("sh"),
            killed,
            s.path("unmerged"),
        ])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );
    assert_eq!(String::from_utf8_lossy(&o.stdout).lines().count(), 6);
}

/// `inspect` on a file, a complete folder, a killed one and unmerged
/// shards: provenance everywhere, and completeness that tells them apart.
#[test]
fn inspect_tells_complete_from_killed_and_names_what_made_it() {
    let s = setup(24);
    let file = s.path("one.parquet");
    s.ok(&file, &[]);
    let complete = s.path("ds");
    s.ok(&complete, &["--chunk-rows", "10"]);
    let killed = s.path("killed");
    let extra = ["--chunk-rows", "3", "--window", "1", "--threads", "1"];
    assert!(kill_after_first_part(&s, &killed, &extra), "killed mid-run");
    for k in 0..2 {
        let spec = format!("{k}/2");
        let o = s.tag(&s.path("sh"), &["--shard", &spec, "--chunk-rows", "10"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let inspect = |p: &Path| -> serde_json::Value {
        let o = paratag(&["inspect", p.to_str().unwrap(), "--json"]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let rows = table(&file).height();
    for (p, kind) in [(&file, "file"), (&complete, "dataset")] {
        let r = inspect(p);
        assert_eq!(r["kind"], kind);
        assert_eq!(r["complete"], true, "{r}");
        assert_eq!(r["visible"], true, "{r}");
        assert_eq!(r["articles"], 24, "{r}");
        assert_eq!(r["rows"], rows, "{r}");
        let prov = &r["provenance"];
        assert_eq!(prov["paratag.run"]["dtype"], "f32", "{prov}");
        assert_eq!(prov["paratag.run"]["dtype_requested"], "f32", "{prov}");
        assert_eq!(prov["paratag.run"]["commit"], paratag::provenance::COMMIT);
        // Clitics outside entity spans unless --entity-spans word.
        assert_eq!(prov["paratag.settings"]["entity_spans"], "name", "{prov}");
        let enc = paratag::hash::sha256_file(&s.enc.join("model.safetensors")).unwrap();
        assert_eq!(
            prov["paratag.settings"]["models"][0]["weights_sha256"],
            enc.as_str()
        );
        assert_eq!(
            prov["paratag.codebook_sha256"],
            paratag::hash::sha256_file(&s.cb).unwrap().as_str()
        );
        // Every paragraph has a topic label (null counted as such).
        let topics: u64 = r["labels"]["topic"]
            .as_object()
            .unwrap()
            .values()
            .map(|v| v.as_u64().unwrap())
            .sum();
        assert_eq!(topics as usize, rows);
        assert!(r["labels"]["entities"].as_object().is_some(), "{r}");
    }
    let r = inspect(&killed);
    assert_eq!(r["complete"], false, "{r}");
    assert_eq!(r["visible"], false, "{r}");
    assert!(
        r["status"].as_str().unwrap().starts_with("INCOMPLETE"),
        "{r}"
    );
    assert!(
        r["parts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["state"] == "pending"),
        "{r}"
    );
    let missing: u64 = r["missing_ordinals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g[1].as_u64().unwrap() - g[0].as_u64().unwrap())
        .sum();
    assert_eq!(missing + r["articles"].as_u64().unwrap(), 24, "{r}");
    assert_eq!(r["provenance"]["paratag.run"]["dtype"], "f32", "{r}");
    // The text report says it too, and so does a shard folder before merge.
    let o = paratag(&["inspect", killed.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("status: INCOMPLETE") && text.contains("--resume"),
        "{text}"
    );
    let r = inspect(&s.path("sh"));
    assert_eq!(r["kind"], "sharded dataset");
    assert_eq!(
        (r["complete"].clone(), r["visible"].clone()),
        (true.into(), false.into())
    );
    assert!(
        r["status"].as_str().unwrap().contains("paratag merge"),
        "{r}"
    );
    assert!(paratag(&["merge", s.path("sh").to_str().unwrap()])
        .status
        .success());
    let r = inspect(&s.path("sh"));
    assert_eq!(
        (r["complete"].clone(), r["visible"].clone()),
        (true.into(), true.into())
    );
    assert_eq!(r["rows"], rows);
}

/// Ctrl-C (SIGINT) and a scheduler's SIGTERM leave no temporary file, exit
/// with 128 + the signal, and the folder resumes to the uninterrupted table.
#[test]
fn an_interrupt_leaves_no_temporary_file_and_resumes() {
    let s = setup(40);
    let reference = s.ok(&s.path("ref.parquet"), &[]);
    for (sig, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        for out in [
            s.path(&format!("file-{sig}.parquet")),
            s.path(&format!("ds-{sig}")),
        ] {
            let folder = !out.to_string_lossy().ends_with(".parquet");
            let extra: &[&str] = if folder {
                &["--chunk-rows", "3", "--window", "1", "--threads", "1"]
            } else {
                &["--window", "1", "--threads", "1"]
            };
            let child = s
                .command(&out, extra)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // Signal once the job is writing its table or a part (that
            // temporary file exists).
            let started = Instant::now();
            let temps = |dir: &Path| -> Vec<String> {
                walkdir::WalkDir::new(dir)
                    .into_iter()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with(".paratag-"))
                    .collect()
            };
            let name = out.file_name().unwrap().to_string_lossy().into_owned();
            let writing = |t: &Vec<String>| {
                t.iter().any(|n| {
                    n.starts_with(&format!(".paratag-{name}")) || n.starts_with(".paratag-part-")
                })
            };
            while !writing(&temps(s.dir.path())) && started.elapsed().as_secs() < 60 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            // SAFETY: signalling our own child.
            unsafe { libc::kill(child.id() as i32, sig) };
            let o = child.wait_with_output().unwrap();
            assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
            assert!(stderr(&o).contains("interrupted"), "{}", stderr(&o));
            assert_eq!(temps(s.dir.path()), Vec::<String>::new(), "signal {sig}");
            assert!(!out.is_file(), "no half-written table");
            if folder {
                assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
                let got = s.ok(&out, &[extra, &["--resume"]].concat());
                assert_same(&format!("resumed after signal {sig}"), &reference, &got);
            }
        }
    }
}

/// `-o FILE` never replaces a file silently, and an input with no articles
/// is an error naming it (or, with --allow-empty, an empty table).
#[test]
fn an_existing_file_or_an_empty_input_stops_the_job() {
    let s = setup(3);
    let out = s.path("o.parquet");
    std::fs::write(&out, b"precious").unwrap();
    let o = s.tag(&out, &[]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("o.parquet: exists") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(std::fs::read(&out).unwrap(), b"precious");
    let o = s.tag(&out, &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(read(&out).height(), table(&out).height());

    let empty = write(s.dir.path(), "empty.jsonl", "");
    let blank = write(s.dir.path(), "blank.jsonl", "\n\n");
    for input in [&empty, &blank] {
        let out = s.path("e.parquet");
        let mut args = s.args(&out, &[]);
        args[1] = input.to_str().unwrap().to_string();
        let o = command_in("f32")
            .args(&args)
            .env("PARATAG_HOME", home())
            .output()
            .unwrap();
        let err = stderr(&o);
        assert!(!o.status.success(), "{err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.contains(input.to_str().unwrap()) && err.contains("no articles"),
            "{err}"
        );
        assert!(!out.exists());
        args.push("--allow-empty".into());
        args.retain(|a| a != "-q");
        let o = command_in("f32")
            .args(&args)
            .env("PARATAG_HOME", home())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", stderr(&o));
        assert!(stderr(&o).contains("warning") && stderr(&o).contains("no articles"));
        assert_eq!(read(&out).height(), 0);
        std::fs::remove_file(&out).unwrap();
    }
}

#[test]
fn repeated_paragraphs_are_copied_and_marked_alike_after_a_resume_f32() {
    repeated_paragraphs_are_copied_and_marked_alike_after_a_resume("f32");
}

#[test]
fn repeated_paragraphs_are_copied_and_marked_alike_after_a_resume_bf16() {
    repeated_paragraphs_are_copied_and_marked_alike_after_a_resume("bf16");
}

/// The corpus twice, the second time under new ids: every paragraph of
/// the second half repeats one of the first. Copies get their first's
/// labels without a model pass (the same labels as computing them), name
/// it in `dup_of_*`, and a job killed and resumed marks the same copies.
/// In each test dtype.
fn repeated_paragraphs_are_copied_and_marked_alike_after_a_resume(dtype: &'static str) {
    let mut s = setup_in(24, dtype);
    let once = std::fs::read_to_string(&s.input).unwrap();
    let again = once.replace("\"id\":\"art-", "\"id\":\"again-");
    assert_ne!(once, again);
    s.input = write(s.dir.path(), "twice.jsonl", &format!("{once}{again}"));
    let o = s.tag(&s.path("ref.parquet"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let rows = table(&s.path("ref.parquet"));
    let summary: serde_json::Value =
        serde_json::from_str(&metadata(&s.path("ref.parquet"))["paratag.summary"]).unwrap();
    assert_eq!(summary["copied"], rows.height() / 2, "{summary}");
    let computed = s.ok(&s.path("all.parquet"), &["--recompute-duplicates"]);
    let labels = |df: &DataFrame| df.drop_many(["dup_of_article_id", "dup_of_paragraph"]);
    assert_same("copied or computed", &labels(&rows), &labels(&computed));
    assert_eq!(
        computed.column("dup_of_article_id").unwrap().null_count(),
        computed.height()
    );
    let str_col = |c: &str| -> Vec<Option<String>> {
        let c = rows.column(c).unwrap().str().unwrap().clone();
        c.iter().map(|x| x.map(String::from)).collect()
    };
    let (ids, dup_of) = (str_col("article_id"), str_col("dup_of_article_id"));
    let paras = rows.column("paragraph").unwrap().u32().unwrap().clone();
    let dup_paras = rows
        .column("dup_of_paragraph")
        .unwrap()
        .u32()
        .unwrap()
        .clone();
    for i in 0..rows.height() {
        let id = ids[i].as_deref().unwrap();
        match id.strip_prefix("again-") {
            Some(n) => {
                assert_eq!(dup_of[i].as_deref(), Some(&*format!("art-{n}")), "row {i}");
                assert_eq!(dup_paras.get(i), paras.get(i), "row {i}");
            }
            None => assert_eq!(dup_of[i], None, "row {i}: {id}"),
        }
    }

    let out = s.path("killed");
    let small = ["--window", "4", "--chunk-rows", "10"];
    assert!(
        kill_after_first_part(&s, &out, &small),
        "finished before the kill"
    );
    let o = s.tag(&out, &[&small[..], &["--resume"]].concat());
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same("resumed", &rows, &table(&out));
}

/// Runs `s` on `out` until its manifest lists a part, then kills it
/// (SIGKILL); returns whether it was still running.
fn kill_after_first_part(s: &Setup, out: &Path, extra: &[&str]) -> bool {
    let mut child = s
        .command(out, extra)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let parts = std::fs::read_to_string(out.join("_manifest.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|m| m["parts"].as_array().map(|p| p.len()))
            .unwrap_or(0);
        if parts > 0 || started.elapsed().as_secs() > 120 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    true
}

/// The determinism promise (README "Determinism") in one `dtype`: the same
/// label columns and scores for every window, batch budget, thread count,
/// input order, a kill and `--resume`, and 3 shards merged.
fn same_output_whatever_the_batching(dtype: &'static str) {
    let s = setup_in(36, dtype);
    let reference = s.ok(&s.path("ref.parquet"), &[]);
    let mut variants: Vec<(String, DataFrame)> = vec![];
    for (name, extra) in [
        ("window 2", vec!["--window", "2"]),
        ("window 3", vec!["--window", "3"]),
        ("batch-tokens 64", vec!["--batch-tokens", "64"]),
        ("threads 1", vec!["--threads", "1"]),
        ("threads 2", vec!["--threads", "2"]),
    ] {
        let out = s.path(&format!("{}.parquet", name.replace(' ', "-")));
        variants.push((name.to_string(), s.ok(&out, &extra)));
    }
    // The input in reverse order.
    let text = std::fs::read_to_string(&s.input).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.reverse();
    let reversed = write(s.dir.path(), "reversed.jsonl", &(lines.join("\n") + "\n"));
    let out = s.path("reversed.parquet");
    let mut args = s.args(&out, &["--window", "5"]);
    args[1] = reversed.to_str().unwrap().to_string();
    let o = command_in(dtype)
        .args(&args)
        .env("PARATAG_HOME", home())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    variants.push(("reversed input".into(), table(&out)));
    // Killed once a part is written, then resumed.
    let out = s.path("killed");
    let extra = ["--chunk-rows", "4", "--window", "1", "--threads", "1"];
    let was_running = kill_after_first_part(&s, &out, &extra);
    let mut resume = extra.to_vec();
    resume.push("--resume");
    variants.push((
        format!("kill (mid-run: {was_running}) and --resume"),
        s.ok(&out, &resume),
    ));
    // Three shards, merged.
    let out = s.path("sharded");
    for k in 0..3 {
        let spec = format!("{k}/3");
        let o = s.tag(&out, &["--shard", &spec, "--window", "4"]);
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let o = command_in(dtype)
        .args(["merge", out.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    variants.push(("3 shards merged".into(), table(&out)));
    for (name, got) in &variants {
        assert_same(&format!("{dtype}, {name}"), &reference, got);
    }
    // The runs really were in this dtype.
    let meta = metadata(&s.path("ref.parquet"));
    let run: serde_json::Value = serde_json::from_str(&meta["paratag.run"]).unwrap();
    assert_eq!(run["dtype"], dtype);
}

#[test]
fn same_output_whatever_the_batching_f32() {
    same_output_whatever_the_batching("f32");
}

#[test]
fn same_output_whatever_the_batching_bf16() {
    same_output_whatever_the_batching("bf16");
}
