#!/usr/bin/env bash
# Stance on UNSEEN targets: builds gold sheets from five shared stance sets
# (IBM ArgQ-30k, Perspectrum, VAST, Mawqif and RUW leave-one-target-out; see
# scripts/unseen_targets.py for the conversion rules), runs `paratag eval`
# on each with no labels for the target (an empty codebook, so eval adds
# every gold target with "The author supports/opposes <target>."), checks
# which model did the scoring (a `paratag tag` run on the first sheet with
# the same sentences, `paratag inspect`, same confusion matrices), and
# prints one Markdown table.
#
#   scripts/unseen-targets.sh [--split dev|test] [--profile NAME|none] [--cap N] [--seed N] [--bootstrap N]
#
# --profile (default `default`): the installed profile whose heads score the
# targets; the default profile's head for any target reads each target's
# text. `none`: the plain encoder's similarity to the two sentences (the
# baseline before that head). The any-target head was trained without
# Mawqif and RUW (scripts/stance_pairs.py), but the default profile's LoRA
# adapter under it was trained with per-target heads for all their targets
# (datasets/recipes/ukraine-multi.toml), so their sheets are not clean
# unseen targets for `default`: the figures are optimistic. ArgQ and
# Perspectrum test motions and claims are disjoint from their train splits
# and from the adapter's data; VAST's dev split was used for training, so
# VAST counts on --split test only.
#
# --split defaults to dev. Train and tune only on train/dev: run --split test
# only for the final measurement. --cap (default 1000) bounds the rows of
# each sheet (seeded sample stratified by target and label); a full dev run
# took 7 minutes on 2 CPU cores (Intel Xeon, cold feature cache; VAST's long
# comments are 3 of them). Outputs: target/unseen-targets/SPLIT/
# (sheets, manifest.json, eval reports NAME.md / NAME.json, table.md).
#
# Needs scripts/setup.sh first (target/release/paratag and the offline
# multilingual-e5-small in ~/.cache/paratag/home) and the shared data at
# ../shared/datasets beside the repository (SHARED=DIR to point elsewhere).
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/datasets}
SPLIT=dev
CAP=1000
SEED=1
BOOT=1000
PROFILE=default
while [[ $# -gt 0 ]]; do
  case $1 in
    --split) SPLIT=$2; shift 2 ;;
    --cap) CAP=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --bootstrap) BOOT=$2; shift 2 ;;
    --profile) PROFILE=$2; shift 2 ;;
    -h|--help) sed -n '2,32p' "$0"; exit 0 ;;
    *) echo "unseen-targets: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $SPLIT == dev || $SPLIT == test ]] || { echo "unseen-targets: --split must be dev or test" >&2; exit 2; }
P=target/release/paratag
[[ -x $P ]] || { echo "unseen-targets: $P missing; run scripts/setup.sh" >&2; exit 1; }
[[ -d $SHARED ]] || { echo "unseen-targets: $SHARED missing (the shared data beside the repository)" >&2; exit 1; }
PY=python3
OUT=target/unseen-targets/$SPLIT
rm -rf "$OUT"
mkdir -p "$OUT"
START=$SECONDS
[[ $SPLIT == test ]] && echo "unseen-targets: TEST split: the final measurement, not for tuning" >&2
MODELS=()
[[ $PROFILE == none ]] || MODELS=(--profile "$PROFILE")
echo "unseen-targets: split $SPLIT, profile $PROFILE, cap $CAP rows per sheet, seed $SEED, $BOOT bootstrap replicates" >&2

$PY scripts/unseen_targets.py build --split "$SPLIT" --cap "$CAP" --seed "$SEED" \
  --shared "$SHARED" --out "$OUT"

NAMES=$($PY -c 'import json,sys; print(" ".join(s["name"] for s in json.load(open(sys.argv[1]))))' "$OUT/manifest.json")
FAILED=0
for name in $NAMES; do
  t0=$SECONDS
  if "$P" eval --force --gold "$OUT/$name.csv" -c "$OUT/codebook.toml" "${MODELS[@]}" \
       --gold-col target=target --gold-col stance=stance \
       --bootstrap "$BOOT" --seed "$SEED" -q \
       --report "$OUT/$name.md" --json "$OUT/$name.json" 2> "$OUT/$name.err"; then
    echo "unseen-targets: $name: $((SECONDS - t0)) s" >&2
  else
    FAILED=1
    echo "unseen-targets: $name: eval FAILED: $(tail -n 3 "$OUT/$name.err")" >&2
  fi
done

# Which model scored the targets: eval's report does not say, so tag the
# first sheet with the same sentences, inspect the output's provenance, and
# check that eval reading those predictions gives the same confusions.
FIRST=${NAMES%% *}
PROV=$OUT/provenance
mkdir -p "$PROV"
if [[ -f $OUT/$FIRST.json ]]; then
  $PY scripts/unseen_targets.py codebook "$OUT/$FIRST.csv" -o "$PROV/codebook.toml"
  $PY - "$OUT/$FIRST.csv" "$PROV/texts.jsonl" <<'PY'
import csv, json, sys
with open(sys.argv[1], encoding="utf-8", newline="") as f, open(sys.argv[2], "w", encoding="utf-8") as o:
    for r in csv.DictReader(f):
        assert r["paragraph"] == "0", "the provenance sheet must have one row per article"
        o.write(json.dumps({"id": r["article_id"], "text": r["text"]}, ensure_ascii=False) + "\n")
PY
  "$P" tag "$PROV/texts.jsonl" -o "$PROV/tagged.parquet" -c "$PROV/codebook.toml" "${MODELS[@]}" \
    --no-ner --no-topic --no-segment --force -q
  "$P" inspect "$PROV/tagged.parquet" --json > "$PROV/inspect.json"
  "$P" eval --force --gold "$OUT/$FIRST.csv" --pred "$PROV/tagged.parquet" \
    --gold-col target=target --gold-col stance=stance --bootstrap 10 -q \
    --report "$PROV/eval-pred.md" --json "$PROV/eval-pred.json"
  $PY scripts/unseen_targets.py provenance --sheet "$OUT/$FIRST.csv" \
    --inspect "$PROV/inspect.json" --eval "$OUT/$FIRST.json" \
    --pred "$PROV/eval-pred.json" --output "$PROV/provenance.json" || FAILED=1
fi

COMMIT=$(git rev-parse --short HEAD)
[[ -z $(git status --porcelain --untracked-files=no) ]] || COMMIT="$COMMIT (worktree modified)"
$PY scripts/unseen_targets.py table --dir "$OUT" --commit "$COMMIT" --date "$(date -u +%F)" \
  --provenance "$PROV/provenance.json" | tee "$OUT/table.md"
echo
echo "Runtime: $((SECONDS - START)) s (eval's feature cache in \$PARATAG_HOME/cache/features makes reruns faster)." | tee -a "$OUT/table.md"
exit $FAILED
