#!/usr/bin/env bash
# Simulation for `paratag estimate` (issue 28): how far each method's
# corrected shares (cc, acc, pacc, emq) are from the truth, how often their
# 95 % bootstrap intervals cover it, for a WEAK and a TRAINED stance head,
# and whether QuaPy's ACC/PACC/EMQ give the same point estimates on the
# same inputs.
#
#   scripts/quant-sim.sh [--reps R] [--corpora G] [--size N] [--gold n]
#                        [--bootstrap B] [--seed S] [--no-quapy]
#                        [--synthetic ACC] [--synthetic-only] [--results DIR]
#
# Defaults: 20 replications x 10 corpora = 200 corpora of N = 1000 rows, a
# gold sample of n = 300 per replication, 500 bootstrap replicates, seed 1.
# Env: P (the binary, default target/release/paratag), SHARED (default
# ../shared/datasets), THREADS (libtorch threads for train/tag, default 1:
# on the 2-core machine 2 threads were slower beside another job).
#
# Design, and why:
# - Data: RUW Russia-Ukraine stance tweets, target "Ukraine" (English;
#   favor/against/none), read by scripts/unseen_targets.py (`ruw`, GBK).
# - Trained head: the any-target head fine-tuned exactly as
#   scripts/learning-curve.sh --set ruw --target Ukraine does for size 500
#   (a seeded 500-row sample of RUW train stratified by label, dev = RUW
#   val, --epochs 10 --patience 3 --seed 1 --batch-size 16, beside a copy of
#   the adapter), then its stance threshold calibrated on dev (`paratag
#   calibrate`: 0.5 -> 0.37, dev macro-F1 0.28 -> 0.44; at 0.5 its softer
#   probabilities made 90 % of the pool `none`). Weak head: the shipped head for any target
#   (models/heads/ukraine-multi/stance_any), zero-shot on this target. (Its
#   LoRA adapter saw RUW train labels through a per-target head, so "weak"
#   is optimistic; see scripts/learning-curve.sh.)
# - Pool: the RUW train rows of Ukraine less those 500; val and test are
#   never drawn (test is for final measurements only). The pool is tagged
#   once per head (`tag --no-segment`, a codebook with the target "Ukraine"
#   and the sentences eval adds for a new target: unseen_targets.py
#   codebook), and each head's macro-F1 on it is measured with `eval --pred`
#   so readers see how weak "weak" is. Every later table is these tagged
#   rows redrawn: no model runs in the loop.
# - Replication r (numpy default_rng([S, r])): the pool is split at random
#   into a gold pool (1/3) and a corpus pool (2/3), disjoint, so the gold
#   sample never holds a corpus's own rows. Gold sample: n rows, simple
#   random, without replacement, from the gold pool (what `estimate`
#   assumes of a `paratag sample` sheet). G corpora of N rows, drawn with
#   replacement from the corpus pool stratified by gold label at target
#   shares: against rises linearly 0.10 -> 0.40 over the corpora (a trend to
#   recover), favor uniform in [0.10, 0.40], none the rest; so the label
#   mix differs from the gold sample's (prior shift: the correction's
#   assumption holds by construction, P(predicted | true) is the same
#   everywhere). The truth is each corpus's REALIZED share (its drawn rows'
#   label counts / N).
# - The table `estimate` reads: the tagged rows (Parquet key-value metadata
#   kept: estimate reads the codebook there) with unique article_ids
#   (r3-c7-412) and a pass-through column `corpus` (c00.., or `gold` for the
#   gold sample's rows, so the gold sheet joins by article_id/paragraph/text).
#   `paratag estimate PRED --gold SHEET --by corpus --method M --bootstrap B
#   --seed 1000*S+r` per method, Parquet output (full precision; the CSV
#   rounds to 1e-6). The groups `all` and `gold` are ignored.
# - Metrics per head x method over all (corpus, label) pairs: MAE, coverage
#   (ci_low <= truth <= ci_high), mean interval width; MAE, bias and coverage
#   per label (against: the label with the trend).
# - QuaPy (pinned, its own venv, which also holds pyarrow for the tables):
#   the same predicted labels and posteriors (as estimate's `seen_of` builds
#   them), the same gold sample as its validation set, aggregation fitted
#   on the precomputed predictions (a look-up "classifier"; nothing refitted).
#   ACC/PACC use QuaPy's default solver `minimize` (least squares on the
#   simplex, the same problem paratag solves); EMQ with its defaults and
#   with a tolerance like paratag's. ACC/PACC are also checked against the
#   exact simplex least-squares solution (every support's KKT system), which
#   tells whose solver is off where the two disagree. QuaPy's EMQ-BCTS
#   (posteriors recalibrated on the gold sample) is reported as a diagnostic
#   of EMQ's calibration assumption. --no-quapy skips all this (the venv is
#   still made: pyarrow writes the tables).
#
# Supplementary: --synthetic ACC (repeatable) adds a simulated classifier
# (each pool row's gold label with probability ACC, else another at random;
# posterior c ~ U(0.5, 0.95) on it, the rest split at random), to see the
# methods where the correction is well identified; --synthetic-only runs
# only those (not the two heads); --results DIR puts the simulation's files
# elsewhere (default target/quant-sim; data, heads and the tagged pool stay
# there).
#
# Output: target/quant-sim/ (data/: sheets, pool; heads/; tagged/; reps/rNN/:
# gold sheets, truth, shares; results.json, records.jsonl, quapy.jsonl,
# table.md). Trained head and tagged pool are reused when their inputs,
# settings and the binary are unchanged (heads/trained.stamp,
# tagged/*.stamp). Timing (2 cores, 1 thread): training ~130 s, tagging
# ~130 s per head, then ~3 min per replication (emq's bootstrap is 3/4 of
# it): about an hour at the defaults. Needs scripts/setup.sh (binary,
# encoder), ../shared, python3 with venv, and PyPI the first time (the
# venv: ${XDG_CACHE_HOME:-$HOME/.cache}/paratag/quapy-venv, about 660 MB,
# re-made when the pins or the Python version change).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/datasets}
P=${P:-target/release/paratag}
THREADS=${THREADS:-1}
REPS=20
CORPORA=10
SIZE=1000
GOLD=300
BOOT=500
SEED=1
QUAPY=1
HEAD_SEED=1
SYNTH=()
RESULTS=target/quant-sim
while [[ $# -gt 0 ]]; do
  case $1 in
    --reps) REPS=$2; shift 2 ;;
    --corpora) CORPORA=$2; shift 2 ;;
    --size) SIZE=$2; shift 2 ;;
    --gold) GOLD=$2; shift 2 ;;
    --bootstrap) BOOT=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --no-quapy) QUAPY=0; shift ;;
    --synthetic) SYNTH+=(--synthetic "$2"); shift 2 ;;
    --synthetic-only) SYNTH+=(--synthetic-only); shift ;;
    --results) RESULTS=$2; shift 2 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quant-sim: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -x $P ]] || { echo "quant-sim: $P missing or not executable; run scripts/setup.sh (or set P=BINARY)" >&2; exit 1; }
[[ -d $SHARED/ruw_russia_ukraine_stance ]] || {
  echo "quant-sim: $SHARED/ruw_russia_ukraine_stance missing (the shared data beside the repository; SHARED=DIR to point elsewhere)" >&2; exit 1; }
BASE=models/heads/ukraine-multi
[[ -d $BASE/stance_any && -d $BASE/adapter ]] || { echo "quant-sim: $BASE/stance_any or adapter missing" >&2; exit 1; }

venv="${XDG_CACHE_HOME:-$HOME/.cache}/paratag/quapy-venv"
# Exact pins: QuaPy, pyarrow and what they pull in (pip freeze of a clean
# install, Python 3.11).
reqs="QuaPy==0.2.3
pyarrow==26.0.1
numpy==2.4.6
scipy==1.17.1
scikit-learn==1.9.1
abstention==0.1.3.1
certifi==2026.10.19.post1
cloudpickle==3.1.3
contourpy==1.3.3
cycler==0.12.1
fonttools==4.69.1
joblib==1.6.0
kiwisolver==1.5.1
matplotlib==3.11.2
narwhals==2.29.0
packaging==26.4
pandas==3.1.1
pillow==13.0.0
pyparsing==3.3.3
python-dateutil==4.0.0
threadpoolctl==3.8.0
tqdm==4.70.1
tzdata==2026.6
ucimlrepo==0.0.7
xlrd==2.0.2"
source scripts/venv.sh
pinned_venv "$venv" "$reqs" quant-sim
VPY=$venv/bin/python

OUT=target/quant-sim
DATA=$OUT/data
HEADS=$OUT/heads
TAGGED=$OUT/tagged
mkdir -p "$DATA" "$HEADS" "$TAGGED"
START=$SECONDS
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo '?')
[[ -z $(git status --porcelain --untracked-files=no 2>/dev/null) ]] || COMMIT="$COMMIT (worktree modified)"
BIN_SHA=$(sha256sum "$P" | cut -d' ' -f1)
echo "quant-sim: $P (sha256 ${BIN_SHA:0:12}), commit $COMMIT, $REPS x $CORPORA corpora of $SIZE, gold $GOLD, bootstrap $BOOT, seed $SEED, $THREADS thread(s)" >&2

python3 scripts/quant_sim.py prepare --shared "$SHARED" --out "$DATA" --head-seed "$HEAD_SEED"
python3 scripts/unseen_targets.py codebook "$DATA/pool.csv" -o "$DATA/codebook.toml"
COLS=(--gold-col target=target --gold-col stance=stance)

# The heads, beside a copy of the adapter (a head trained with --adapter
# must sit beside it; tagging looks for it there).
sum_of() { cat "$@" | sha256sum | cut -d' ' -f1; }
if [[ ! -d $HEADS/adapter ]] || ! diff -rq "$BASE/adapter" "$HEADS/adapter" > /dev/null; then
  rm -rf "$HEADS/adapter"; cp -r "$BASE/adapter" "$HEADS/adapter"
fi
rm -rf "$HEADS/weak"; cp -r "$BASE/stance_any" "$HEADS/weak"
TRAIN_STAMP=$(printf '%s\n' "$BIN_SHA" "$(sum_of "$DATA/train-500.csv" "$DATA/dev.csv" "$BASE"/stance_any/* "$BASE"/adapter/*)" \
  "epochs 10 patience 3 seed $HEAD_SEED batch 16" | sha256sum | cut -d' ' -f1)
if [[ "$(cat "$HEADS/trained.stamp" 2>/dev/null)" != "$TRAIN_STAMP" || ! -d $HEADS/trained ]]; then
  echo "quant-sim: training the head on 500 labels (log: $HEADS/train.err)" >&2
  rm -rf "$HEADS/trained"
  t0=$SECONDS
  "$P" train stance --any-target --init "$BASE/stance_any" --train "$DATA/train-500.csv" --dev "$DATA/dev.csv" \
    "${COLS[@]}" --adapter "$HEADS/adapter" -o "$HEADS/trained" --epochs 10 --patience 3 \
    --seed "$HEAD_SEED" --batch-size 16 --threads "$THREADS" 2> "$HEADS/train.err" \
    || { echo "quant-sim: training failed: $(tail -n 5 "$HEADS/train.err")" >&2; exit 1; }
  echo "$TRAIN_STAMP" > "$HEADS/trained.stamp"
  echo "quant-sim: trained in $((SECONDS - t0)) s" >&2
else
  echo "quant-sim: trained head up to date ($HEADS/trained)" >&2
fi

# The trained head's threshold, calibrated on dev as a researcher would
# after training (`train` picks the epoch by argmax over the three labels;
# `tag` calls favor/against only at the codebook's threshold, 0.5 unless
# calibrated, and the fine-tuned head's probabilities are softer).
if [[ ! -f $HEADS/trained.toml || $HEADS/trained.toml -ot $HEADS/trained.stamp ]]; then
  "$P" calibrate --force --gold "$DATA/dev.csv" "${COLS[@]}" -c "$DATA/codebook.toml" --heads "$HEADS/trained" \
    -o "$HEADS/trained.toml" --threads "$THREADS" 2> "$HEADS/calibrate.err" \
    || { echo "quant-sim: calibration failed: $(tail -n 3 "$HEADS/calibrate.err")" >&2; exit 1; }
fi
echo "quant-sim: trained head: $(grep -m1 'threshold 0.5 ->' "$HEADS/calibrate.err" | sed 's/^paratag: //')" >&2
cp "$DATA/codebook.toml" "$HEADS/weak.toml"

# Tag the pool once per head; measure each head on it.
HEAD_ARGS=()
for h in weak trained; do
  TAG_STAMP=$(printf '%s\n' "$BIN_SHA" "$(sum_of "$DATA/pool.jsonl" "$HEADS/$h.toml" "$HEADS/$h"/head.* "$HEADS"/adapter/*)" \
    | sha256sum | cut -d' ' -f1)
  if [[ "$(cat "$TAGGED/$h.stamp" 2>/dev/null)" != "$TAG_STAMP" || ! -f $TAGGED/$h.parquet ]]; then
    echo "quant-sim: tagging the pool with the $h head" >&2
    t0=$SECONDS
    "$P" tag "$DATA/pool.jsonl" -o "$TAGGED/$h.parquet" -c "$HEADS/$h.toml" --heads "$HEADS/$h" \
      --no-ner --no-topic --no-segment --threads "$THREADS" --force -q
    echo "$TAG_STAMP" > "$TAGGED/$h.stamp"
    echo "quant-sim: tagged in $((SECONDS - t0)) s" >&2
  fi
  "$P" eval --force --gold "$DATA/pool.csv" --pred "$TAGGED/$h.parquet" "${COLS[@]}" \
    --bootstrap 1000 --seed 1 -q --json "$TAGGED/eval-$h.json" --report "$TAGGED/eval-$h.md"
  HEAD_ARGS+=(--head "$h=$TAGGED/$h.parquet,$TAGGED/eval-$h.json")
done

EXTRA=()
[[ $QUAPY == 1 ]] || EXTRA+=(--no-quapy)
# One estimate at a time; BLAS in QuaPy's numpy kept to one thread.
mkdir -p "$RESULTS"
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 "$VPY" scripts/quant_sim.py simulate --bin "$P" --data "$DATA" --out "$RESULTS" \
  "${HEAD_ARGS[@]}" "${SYNTH[@]}" --reps "$REPS" --corpora "$CORPORA" --size "$SIZE" --gold "$GOLD" \
  --bootstrap "$BOOT" --seed "$SEED" --commit "$COMMIT" "${EXTRA[@]}" > /dev/null
echo "Total run time: $((SECONDS - START)) s (training and tagging included unless reused)." >> "$RESULTS/table.md"
cat "$RESULTS/table.md"
