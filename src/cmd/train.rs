//! `paratag train topic|stance --train GOLD [--dev GOLD] -c CODEBOOK -o HEAD_DIR`
//! and `paratag train ner --train GOLD [--dev GOLD] -o HEAD_DIR`.

use super::eval::GoldFormat;
use anyhow::{Context, Result};
use paratag::codebook::Codebook;
use paratag::formats::LabelSet;
use paratag::heads::NerScheme;
use paratag::job::{self, Embeddings, ModelChoice, TextJob};
use paratag::models::head::{DevFigures, Head, HeadMeta, Hyper, FEATURES};
use paratag::models::{registry, DTypeArg, ModelDir};
use paratag::plan::Tasks;
use paratag::task::{HeadKind, Task};
use paratag::train::examples::{self, Gold, Items};
use paratag::train::multi::{self, HeadPlan, Recipe, Source, SourceSpec};
use paratag::train::{self, tuned};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    Topic,
    Stance,
    Ner,
    /// Several tasks at once from a recipe, fine-tuning the whole encoder
    /// with low-rank adapters (`--recipe RECIPE.toml`).
    Multi,
}

impl Kind {
    /// The head it trains (`multi` trains several, each of its source's kind).
    fn head_kind(self) -> HeadKind {
        match self {
            Kind::Topic => HeadKind::Topic,
            Kind::Stance => HeadKind::Stance,
            Kind::Ner | Kind::Multi => HeadKind::Ner,
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct Args {
    pub kind: Kind,
    /// Training gold (any format `eval` reads); repeat for several files.
    /// NER: a file that marks no span of a type the others mark (WikiANN
    /// has no MISC) has that type masked out of its loss, not taught as O.
    #[arg(long, required_unless_present = "recipe")]
    pub train: Vec<PathBuf>,
    /// `multi`: the recipe (data sources, adapter and training options);
    /// see docs/commands.md (`paratag train multi`).
    #[arg(long, conflicts_with_all = ["train", "dev", "codebook", "target"])]
    pub recipe: Option<PathBuf>,
    /// Dev gold: early stopping, weight decay and temperature are chosen on
    /// it; repeat for several files.
    #[arg(long)]
    pub dev: Vec<PathBuf>,
    #[command(flatten)]
    pub format: GoldFormat,
    /// Without --dev: hold out this share of the training items (seeded) as
    /// the dev set.
    #[arg(long)]
    pub holdout: Option<f64>,
    /// The codebook whose topic ids / stance target the head predicts
    /// (topic and stance heads).
    #[arg(short, long)]
    pub codebook: Option<PathBuf>,
    /// Stance target id (default: the codebook's only target).
    #[arg(long)]
    pub target: Option<String>,
    /// The head folder to write.
    #[arg(short, long)]
    pub output: PathBuf,
    #[arg(long, default_value = "multilingual-e5-small")]
    pub encoder: String,
    /// Default: 300 full-batch steps (topic, stance), 20 epochs (ner).
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Default: 0.05 (topic, stance), 0.001 (ner classifier).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Weight-decay candidates (chosen on dev; the first without dev).
    #[arg(long, value_delimiter = ',', default_value = "0.001,0.0001,0.01")]
    pub weight_decay: Vec<f64>,
    #[arg(long)]
    pub no_class_weights: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[arg(long)]
    pub threads: Option<usize>,
    #[arg(long, default_value_t = 2048)]
    pub batch_tokens: usize,
    /// Encoder layers above the branch layer to copy and fine-tune (default
    /// 2 for ner; 0 for topic and stance: a linear head on the embedding).
    #[arg(long)]
    pub tune_layers: Option<usize>,
    /// With tuned layers: the encoder layer the head branches from (1-based;
    /// default: the top layer minus --tune-layers).
    #[arg(long)]
    pub layer: Option<usize>,
    /// With tuned layers: their learning rate.
    #[arg(long, default_value_t = 5e-5)]
    pub layer_lr: f64,
    /// With tuned layers: texts (encoder windows) per step.
    #[arg(long, default_value_t = 16)]
    pub batch_size: usize,
    /// With tuned layers: epochs without a dev improvement before stopping.
    #[arg(long, default_value_t = 3)]
    pub patience: usize,
    /// Read the encoder with this adapter
    /// merged (the `adapter/` folder of a `train multi` run), so the head
    /// can join that run's heads in one encoder pass; -o must then be a
    /// folder beside the adapter (`OUT/NAME`).
    #[arg(long)]
    pub adapter: Option<PathBuf>,
    /// `stance`: one head for any target (a cross-encoder over its tuned
    /// layers, reading each target's text before the paragraph), trained on
    /// every target the gold labels: the codebook's, and those named in a
    /// long sheet's `target` column. Default --tune-layers 4.
    #[arg(long)]
    pub any_target: bool,
    /// With tuned layers: fine-tune this head folder (same --layer,
    /// --tune-layers and labels) instead of starting from the encoder, e.g.
    /// the head for any target on a few labels of one target.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// NER: GOLD=NEW entity-type renames, e.g. `PERS=PER` (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_parser = super::eval::parse_pair)]
    pub entity_map: Vec<(String, String)>,
}

pub fn run(mut a: Args) -> Result<()> {
    if a.kind == Kind::Multi {
        return run_multi(a);
    }
    if a.recipe.is_some() {
        anyhow::bail!("--recipe is for `paratag train multi`");
    }
    if a.kind == Kind::Ner {
        a.tune_layers.get_or_insert(2);
        return run_ner(a);
    }
    if a.any_target {
        anyhow::ensure!(
            a.kind == Kind::Stance,
            "--any-target is for `paratag train stance`"
        );
        a.tune_layers.get_or_insert(4);
        return run_any_target(a);
    }
    let cb_path = a
        .codebook
        .clone()
        .context("topic and stance heads need -c CODEBOOK")?;
    let cb = Codebook::load(&cb_path)?;
    let kind = a.kind.head_kind();
    let (task, names) = train::class_task(&cb, kind, a.target.as_deref())?;
    let labels = LabelSet::from_codebook(Some(&cb));
    // Texts, class indices, and items left out (ties, or `none` topics).
    let read = |ps: &[PathBuf]| -> Result<(Vec<String>, Vec<usize>, usize)> {
        let items = examples::read_gold(ps, &a.format.read_options(), &labels, false, &|l| {
            eprintln!("paratag: gold {l}")
        })?;
        Ok(examples::classes(&items, &task, &names))
    };
    let adapter = match &a.adapter {
        Some(d) => Some(beside_adapter(d, &a.output)?),
        None => None,
    };
    let (mut texts, mut ys, skipped) = read(&a.train)?;
    let mut held: Option<(Vec<String>, Vec<usize>)> = None;
    if let Some(f) = a.holdout {
        let (keep, dev) = holdout(texts.into_iter().zip(ys).collect(), f, &a)?;
        (texts, ys) = keep.into_iter().unzip();
        held = Some(dev.into_iter().unzip());
    }
    check_classes(&a, &task, &ys)?;
    eprintln!(
        "paratag: train {task}: {} items ({} left out: coder ties, or `none` for topics), {} classes; embedding",
        texts.len(),
        skipped,
        ys.iter().collect::<BTreeSet<_>>().len()
    );
    let dev = match held {
        Some(d) => Some(d),
        None if a.dev.is_empty() => None,
        None => read(&a.dev).map(|(t, y, _)| Some((t, y)))?,
    };
    if a.tune_layers.unwrap_or(0) > 0 {
        let dev = dev.map_or_else(Vec::new, class_items);
        return train_tuned(
            &a,
            kind,
            &task,
            names,
            (class_items((texts, ys)), dev),
            None,
        );
    }
    if dev.as_ref().is_some_and(|d| d.0.is_empty()) {
        anyhow::bail!("{}: no items labeled for {task}", names_of(&a.dev));
    }
    anyhow::ensure!(
        a.init.is_none(),
        "--init is for heads with tuned layers (--tune-layers K, or --any-target)"
    );
    train_linear(&a, kind, task, names, (texts, ys), dev, adapter)
}

/// Training labels must hold items of two classes at least.
fn check_classes(a: &Args, task: &Task, ys: &[usize]) -> Result<()> {
    if ys.is_empty() {
        anyhow::bail!("{}: no items labeled for {task}", names_of(&a.train));
    }
    if ys.iter().collect::<BTreeSet<_>>().len() < 2 {
        anyhow::bail!(
            "{}: the {task} labels have a single class; a head needs two",
            names_of(&a.train)
        );
    }
    Ok(())
}

/// The encoder's paragraph embedding of each text (with the adapter merged
/// when given).
fn embed(a: &Args, texts: &[String], adapter: Option<&Path>) -> Result<Vec<Vec<f32>>> {
    let m = ModelChoice {
        encoder: a.encoder.clone(),
        threads: a.threads,
        batch_tokens: a.batch_tokens,
        dtype: DTypeArg::F32,
        ..ModelChoice::default()
    };
    let tagged = job::tag_texts(
        texts.to_vec(),
        TextJob {
            codebook: None,
            models: &m,
            tasks: Tasks::NONE,
            embeddings: match adapter {
                Some(dir) => Embeddings::Adapted(dir),
                None => Embeddings::Plain,
            },
            only: None,
            progress: paratag::progress::Mode::auto(false),
        },
    )?;
    let mut out = vec![None; texts.len()];
    for (i, r) in tagged.rows {
        out[i] = r.embedding;
    }
    out.into_iter()
        .enumerate()
        .map(|(i, e)| e.with_context(|| format!("gold text {} is empty", i + 1)))
        .collect()
}

/// Texts with their class indices.
type Classes = (Vec<String>, Vec<usize>);

/// Trains a linear head on the encoder's embeddings and writes it.
fn train_linear(
    a: &Args,
    kind: HeadKind,
    task: Task,
    names: Vec<String>,
    train_set: Classes,
    dev_set: Option<Classes>,
    adapter: Option<(PathBuf, String)>,
) -> Result<()> {
    tch::manual_seed(a.seed as i64);
    let adapter_dir = adapter.as_ref().map(|x| x.0.as_path());
    let data = |(t, y): Classes| -> Result<train::Data> {
        Ok(train::Data {
            features: embed(a, &t, adapter_dir)?,
            labels: y,
        })
    };
    let train_data = data(train_set)?;
    let dev_data = dev_set.map(data).transpose()?;
    let lr = a.lr.unwrap_or(0.05);
    let opts = train::Options {
        epochs: a.epochs.unwrap_or(300),
        learning_rate: lr,
        weight_decays: a.weight_decay.clone(),
        class_weights: !a.no_class_weights,
        every: 10,
    };
    if opts.epochs == 0 || opts.weight_decays.is_empty() {
        anyhow::bail!("--epochs must be > 0 and --weight-decay non-empty");
    }
    let fitted = train::fit(&train_data, dev_data.as_ref(), &names, &opts)?;
    let enc = ModelDir::open(&registry::resolve(&a.encoder)?)?;
    let head = Head {
        dir: a.output.clone(),
        meta: HeadMeta {
            kind,
            task,
            labels: names,
            encoder_id: enc.id.clone(),
            encoder_sha256: enc.weights_sha256()?,
            features: match adapter {
                Some(_) => format!("{FEATURES}, of the encoder with its adapter merged"),
                None => FEATURES.into(),
            },
            temperature: fitted.temperature,
            train_sha256: examples::data_sha256(&a.train)?,
            train_items: train_data.labels.len(),
            hyper: Hyper {
                epochs: fitted.epochs,
                learning_rate: lr,
                weight_decay: fitted.weight_decay,
                class_weights: !a.no_class_weights,
                seed: a.seed,
                layer_learning_rate: None,
                batch_size: None,
                steps: None,
            },
            dev: fitted.dev.clone(),
            layer: None,
            tune_layers: None,
            dev_entity_f1: None,
            adapter_sha256: adapter.map(|a| a.1),
            target_text: None,
        },
        weight: fitted.weight,
        bias: fitted.bias,
    };
    head.save(&a.output)?;
    match &fitted.dev {
        Some(d) => eprintln!(
            "paratag: dev ({} items): accuracy {:.3}, macro-F1 {:.3}; epoch {}, weight decay {}, temperature {:.3} -> {}",
            d.items, d.accuracy, d.macro_f1, fitted.epochs, fitted.weight_decay, fitted.temperature, a.output.display()
        ),
        None => eprintln!("paratag: head ({} epochs, no dev set) -> {}", fitted.epochs, a.output.display()),
    }
    if matches!(head.meta.task, Task::Stance(_)) {
        threshold_note(head.meta.dev.as_ref());
    }
    Ok(())
}

/// A stance head's dev macro-F1 takes the most probable label, but `tag`
/// calls favor/against only where the larger reaches a threshold: the one
/// fitted on dev here unless the codebook sets one (RUW, fine-tuned on 500
/// labels: dev macro-F1 0.41 by argmax, 0.28 at 0.5).
fn threshold_note(dev: Option<&DevFigures>) {
    match dev.and_then(|d| d.threshold.zip(d.macro_f1_at_threshold)) {
        Some((t, f1)) => eprintln!(
            "paratag: stance threshold {t:.4} (fitted on dev: macro-F1 {f1:.3} there); `tag` uses it where the codebook sets no threshold, and `paratag calibrate` on your own gold replaces it"
        ),
        None => eprintln!(
            "paratag: note: no dev set, so no stance threshold was fitted: `tag` uses the codebook's (0.5 unless set); fit one on labeled data with `paratag calibrate`"
        ),
    }
}

fn run_ner(a: Args) -> Result<()> {
    let labels = LabelSet {
        entity_map: a.entity_map.iter().cloned().collect(),
        ..Default::default()
    };
    let read = |ps: &[PathBuf]| {
        examples::read_gold(ps, &a.format.read_options(), &labels, true, &|l| {
            eprintln!("paratag: gold {l}")
        })
    };
    // File by file, so that a file marking no span of a type (WikiANN has
    // no MISC) has that type masked out of its loss rather than taught as O.
    let mut types = vec![];
    let mut per_file = |ps: &[PathBuf]| -> Result<Vec<Items>> {
        ps.iter()
            .map(|p| {
                Ok(examples::entities(
                    &read(std::slice::from_ref(p))?,
                    &mut types,
                ))
            })
            .collect()
    };
    let mut train_files = per_file(&a.train)?;
    let mut dev_files = per_file(&a.dev)?;
    // One file marks every type there is: nothing to mask.
    let n = types.len();
    let mut all: Vec<&mut Items> = train_files.iter_mut().chain(dev_files.iter_mut()).collect();
    let missing = examples::mask_unannotated(&mut all, n);
    for (p, m) in a.train.iter().chain(&a.dev).zip(missing) {
        if !m.is_empty() {
            let names: Vec<&str> = m.iter().map(|&k| types[k].as_str()).collect();
            eprintln!(
                "paratag: {} marks no {} span: masked out of its loss and dev score",
                p.display(),
                names.join("/")
            );
        }
    }
    let mut train_items: Items = train_files.into_iter().flatten().collect();
    let mut dev_items = if let Some(f) = a.holdout {
        let (keep, dev) = holdout(train_items, f, &a)?;
        train_items = keep;
        dev
    } else {
        dev_files.into_iter().flatten().collect()
    };
    if train_items.is_empty() {
        anyhow::bail!("{}: no items with entity labels", names_of(&a.train));
    }
    if types.is_empty() {
        anyhow::bail!("{}: the gold marks no entities", names_of(&a.train));
    }
    let sorted = examples::sort_types(&types, &mut [&mut train_items, &mut dev_items]);
    let names = NerScheme::iob2_labels(&sorted);
    eprintln!(
        "paratag: train ner: {} train / {} dev items, types {}",
        train_items.len(),
        dev_items.len(),
        sorted.join(", ")
    );
    train_tuned(
        &a,
        HeadKind::Ner,
        &Task::Entities,
        names,
        (train_items, dev_items),
        None,
    )
}

/// `--adapter DIR` with `-o HEAD_DIR`: the adapter folder, which must be
/// where tagging looks for it (`../adapter` beside the head), and its
/// weights' sha256 for the head to record.
fn beside_adapter(dir: &std::path::Path, output: &std::path::Path) -> Result<(PathBuf, String)> {
    use paratag::models::lora;
    let sha = lora::weights_sha256(dir).with_context(|| format!("--adapter {}", dir.display()))?;
    let expected = lora::dir_of_head(output);
    let same = match (dir.canonicalize(), expected.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    };
    if !same {
        anyhow::bail!(
            "-o {}: a head trained with --adapter {} must sit beside it (tagging looks for ../{} from the head folder): give -o {}",
            output.display(),
            dir.display(),
            lora::DIR,
            dir.parent()
                .unwrap_or(std::path::Path::new("."))
                .join("NAME")
                .display()
        );
    }
    Ok((dir.to_path_buf(), sha))
}

fn names_of(ps: &[PathBuf]) -> String {
    ps.iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `--holdout F` (only without --dev).
fn holdout<T>(items: Vec<T>, f: f64, a: &Args) -> Result<(Vec<T>, Vec<T>)> {
    if !a.dev.is_empty() {
        anyhow::bail!("--holdout and --dev exclude each other");
    }
    Ok(examples::holdout(items, f, a.seed)?)
}

/// Trains a head with tuned encoder layers (`--tune-layers`) and writes it.
fn train_tuned(
    a: &Args,
    kind: HeadKind,
    task: &Task,
    names: Vec<String>,
    (train_items, dev_items): (Items, Items),
    targets: Option<(Vec<String>, Vec<String>)>,
) -> Result<()> {
    if let Some(t) = a.threads {
        tch::set_num_threads(t as i32);
    }
    let dir = ModelDir::open(&registry::resolve(&a.encoder)?)?;
    let pooled = kind != HeadKind::Ner;
    let spec = tuned::Spec {
        encoder: &dir,
        kind,
        task,
        names,
        tune_layers: a.tune_layers.unwrap_or(0),
        layer: a.layer,
        options: tuned::Options {
            epochs: a.epochs.unwrap_or(20),
            learning_rate: a.lr.unwrap_or(1e-3),
            layer_learning_rate: a.layer_lr,
            weight_decay: a.weight_decay[0],
            batch_size: a.batch_size,
            patience: a.patience,
            seed: a.seed,
        },
        class_weights: !a.no_class_weights,
        batch_tokens: a.batch_tokens,
        train_sha256: examples::data_sha256(&a.train)?,
        adapter: a
            .adapter
            .as_deref()
            .map(|d| beside_adapter(d, &a.output))
            .transpose()?,
        targets,
        init: a.init.clone(),
    };
    let (head, fitted) = tuned::train(&spec, &train_items, &dev_items, &|m| {
        eprintln!("paratag: {m}")
    })?;
    head.save(&a.output)?;
    let what = if pooled {
        "macro-F1"
    } else {
        "entity micro-F1"
    };
    match fitted.dev_f1 {
        Some(f) => eprintln!(
            "paratag: dev ({} items): {what} {f:.3}; epoch {} -> {}",
            dev_items.len(),
            fitted.epochs,
            a.output.display()
        ),
        None => eprintln!(
            "paratag: head ({} epochs, no dev set) -> {}",
            fitted.epochs,
            a.output.display()
        ),
    }
    if matches!(head.meta.task, Task::Stance(_)) {
        threshold_note(head.meta.dev.as_ref());
    }
    Ok(())
}

/// Texts, class indices and each text's target text.
type Pairs = (Classes, Vec<String>);

/// Texts with their class indices as training items.
fn class_items((texts, ys): Classes) -> Items {
    texts
        .into_iter()
        .zip(ys)
        .map(|(t, y)| (t, Gold::Class(y)))
        .collect()
}

/// Every (target, text) pair the gold labels for stance, with the target's
/// conditioning text; targets from a `target` column join the codebook's.
fn stance_pairs(a: &Args, paths: &[PathBuf], base: Option<&Codebook>) -> Result<Pairs> {
    let mut gold = vec![];
    for p in paths {
        let (_, items, read) = paratag::formats::read_reported(p, &a.format.read_options())?;
        eprintln!("paratag: gold {}", read.line(p));
        gold.extend(items);
    }
    let cb = super::eval::with_row_targets(base.cloned(), &gold, true)?
        .context("the gold labels no stance target: give -c CODEBOOK or a `target` column")?;
    paratag::formats::validate(&mut gold, &LabelSet::from_codebook(Some(&cb)))?;
    let names: Vec<String> = paratag::task::STANCE_LABELS.map(String::from).to_vec();
    let ((mut texts, mut ys), mut targets): Pairs = Default::default();
    for st in &cb.stances {
        let (t, y, _) = examples::classes(&gold, &Task::Stance(st.id.clone()), &names);
        targets.extend(std::iter::repeat_n(st.conditioning_text(), t.len()));
        texts.extend(t);
        ys.extend(y);
    }
    Ok(((texts, ys), targets))
}

/// `paratag train stance --any-target`: a tuned head for every target.
fn run_any_target(a: Args) -> Result<()> {
    let cb = a.codebook.as_deref().map(Codebook::load).transpose()?;
    let (train_items, train_targets) = stance_pairs(&a, &a.train, cb.as_ref())?;
    let (dev_items, dev_targets) = match a.holdout {
        Some(_) => anyhow::bail!("--any-target takes --dev, not --holdout"),
        None => stance_pairs(&a, &a.dev, cb.as_ref())?,
    };
    let task = Task::any_stance();
    check_classes(&a, &task, &train_items.1)?;
    eprintln!(
        "paratag: train {task}: {} pairs over {} targets, dev {} pairs",
        train_items.0.len(),
        train_targets.iter().collect::<BTreeSet<_>>().len(),
        dev_items.0.len()
    );
    let names = paratag::task::STANCE_LABELS.map(String::from).to_vec();
    let targets = Some((train_targets, dev_targets));
    train_tuned(
        &a,
        HeadKind::Stance,
        &task,
        names,
        (class_items(train_items), class_items(dev_items)),
        targets,
    )
}

/// The gold-reading options of a recipe source, parsed as `eval` parses
/// them on its command line.
#[derive(Debug, clap::Parser)]
#[command(no_binary_name = true)]
struct SourceFormat {
    #[command(flatten)]
    format: GoldFormat,
}

/// `paratag train multi --recipe RECIPE.toml -o OUT`.
fn run_multi(a: Args) -> Result<()> {
    let path = a
        .recipe
        .clone()
        .context("`paratag train multi` needs --recipe RECIPE.toml")?;
    if let Some(t) = a.threads {
        tch::set_num_threads(t as i32);
    }
    let recipe = Recipe::load(&path)?;
    let name = path.display().to_string();
    let cb = match &recipe.codebook {
        Some(c) => Some(Codebook::load(c)?),
        None => None,
    };
    let (mut sources, mut plans, mut types) = (vec![], vec![], vec![]);
    for spec in &recipe.sources {
        let at = format!("{name}: source `{}`", spec.name);
        let s = read_source(spec, cb.as_ref(), &recipe, &mut types, &mut plans)
            .with_context(|| at.clone())?;
        sources.push(s);
    }
    let sorted = ner_types(&mut sources, &types);
    if sources.iter().any(|s| s.spec.kind == HeadKind::Ner) {
        if sorted.is_empty() {
            anyhow::bail!("{name}: the NER sources mark no entities");
        }
        plans.insert(
            0,
            HeadPlan {
                folder: Task::Entities.name(),
                kind: HeadKind::Ner,
                task: Task::Entities,
                labels: NerScheme::iob2_labels(&sorted),
            },
        );
    }
    let dir = ModelDir::open(&registry::resolve(
        recipe.encoder.as_deref().unwrap_or(&a.encoder),
    )?)?;
    for s in &sources {
        eprintln!(
            "paratag: source {} ({}): {} train / {} dev items",
            s.spec.name,
            s.task,
            s.train.len(),
            s.dev.len()
        );
    }
    let bar =
        paratag::progress::Progress::new(paratag::progress::Mode::auto(false), "steps", false);
    let mut trained = multi::train(&dir, &recipe, &sources, &plans, &sorted, &bar, &|m| {
        if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            eprintln!("paratag: {m}")
        }
    })?;
    bar.finish();
    let folders = multi::save(&mut trained, &plans, &a.output)?;
    let m = &trained.adapter.meta;
    eprintln!(
        "paratag: kept step {} of {} ({:.0} s); dev mean {} -> {}",
        m.steps,
        m.steps_run,
        m.wall_seconds,
        m.dev_mean.map_or("-".into(), |d| format!("{d:.3}")),
        a.output.display()
    );
    for f in folders {
        eprintln!("paratag: head {}", f.display());
    }
    Ok(())
}

/// A source's `options`, parsed as `eval` parses its command line.
fn source_format(spec: &SourceSpec) -> Result<SourceFormat> {
    <SourceFormat as clap::Parser>::try_parse_from(&spec.options).map_err(|e| {
        let first = e.to_string();
        let first = first.lines().next().unwrap_or_default();
        anyhow::anyhow!("options: {}", first.trim_start_matches("error: "))
    })
}

/// A source's train and dev items: as read, or dev held out of train
/// (`holdout`, which excludes `dev`).
fn split_source(spec: &SourceSpec, items: Items, dev: Items, seed: u64) -> Result<(Items, Items)> {
    match spec.holdout {
        Some(_) if !spec.dev.is_empty() => anyhow::bail!("`holdout` and `dev` exclude each other"),
        Some(f) => Ok(examples::holdout(items, f, seed)?),
        None => Ok((items, dev)),
    }
}

/// Reads one recipe source: its gold (with the options given in the
/// recipe), as items for its head; a topic or stance head it is the first
/// source of joins `plans`. NER types go into `types`, in first-seen order.
fn read_source(
    spec: &SourceSpec,
    cb: Option<&Codebook>,
    recipe: &Recipe,
    types: &mut Vec<String>,
    plans: &mut Vec<HeadPlan>,
) -> Result<Source> {
    let fmt = source_format(spec)?;
    let ner = spec.kind == HeadKind::Ner;
    let own = match &spec.codebook {
        Some(c) => Some(Codebook::load(c)?),
        None => None,
    };
    let cb = own.as_ref().or(cb);
    let labels = if ner {
        LabelSet {
            entity_map: spec.entity_map.clone().into_iter().collect(),
            ..Default::default()
        }
    } else {
        LabelSet::from_codebook(cb)
    };
    let read = |ps: &[PathBuf]| -> Result<_> {
        Ok(examples::read_gold(
            ps,
            &fmt.format.read_options(),
            &labels,
            ner,
            &|l| eprintln!("paratag: {}: gold {l}", spec.name),
        )?)
    };
    let (task, items, dev, seen) = if ner {
        let tr = examples::entities(&read(&spec.train)?, types);
        let dv = examples::entities(&read(&spec.dev)?, types);
        let seen = examples::marked_types(&tr);
        (Task::Entities, tr, dv, seen)
    } else {
        let cb = cb.context("topic and stance sources need `codebook` in the recipe")?;
        let (task, names) = train::class_task(cb, spec.kind, spec.target.as_deref())?;
        let to_items = |ps: &[PathBuf]| -> Result<Items> {
            let (t, y, _) = examples::classes(&read(ps)?, &task, &names);
            Ok(t.into_iter()
                .zip(y)
                .map(|(t, y)| (t, Gold::Class(y)))
                .collect())
        };
        let (tr, dv) = (to_items(&spec.train)?, to_items(&spec.dev)?);
        let folder = head_folder(spec.codebook.as_deref(), &task);
        if !plans.iter().any(|p| p.folder == folder) {
            plans.push(HeadPlan {
                folder,
                kind: spec.kind,
                task: task.clone(),
                labels: names,
            });
        }
        (task, tr, dv, BTreeSet::new())
    };
    let o = &recipe.train;
    let (items, dev) = split_source(spec, items, dev, o.seed)?;
    if items.is_empty() {
        anyhow::bail!("no training items labeled for {task}");
    }
    Ok(Source {
        train_sha256: examples::data_sha256(&spec.train)?,
        spec: spec.clone(),
        head: head_folder(spec.codebook.as_deref(), &task),
        task,
        train: items,
        dev: multi::cap(dev, o.dev_max, o.seed),
        types: seen,
    })
}

/// One NER head over every source's types, in sorted order: the NER
/// sources' items and type sets are renumbered to it.
fn ner_types(sources: &mut [Source], types: &[String]) -> Vec<String> {
    let sorted = {
        let mut sets: Vec<&mut Items> = vec![];
        for s in sources.iter_mut().filter(|s| s.spec.kind == HeadKind::Ner) {
            sets.push(&mut s.train);
            sets.push(&mut s.dev);
        }
        examples::sort_types(types, &mut sets)
    };
    for s in sources.iter_mut().filter(|s| s.spec.kind == HeadKind::Ner) {
        s.types = s
            .types
            .iter()
            .map(|&k| {
                sorted
                    .iter()
                    .position(|t| *t == types[k])
                    .expect("same set")
            })
            .collect();
    }
    sorted
}

/// A head's folder in the output: its task, after the stem of the
/// source's own codebook if it has one (`sib200-topic`), with characters
/// other than letters, digits, `-` and `_` made `_`.
fn head_folder(codebook: Option<&std::path::Path>, task: &Task) -> String {
    let stem = codebook
        .and_then(|c| c.file_stem())
        .map(|s| format!("{}-", s.to_string_lossy()))
        .unwrap_or_default();
    format!("{stem}{task}")
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
