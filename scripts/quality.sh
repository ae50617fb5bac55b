#!/usr/bin/env bash
# Trains paratag heads on the train (and dev) splits of the shared labeled
# data and of datasets/ukraine-aid, and measures them once on the test splits
# with `paratag eval`; prints one table. Heads and reports go to $OUT
# (default target/quality); the ukraine-aid heads are the ones shipped in
# models/heads/ with the calibrated codebook datasets/codebooks/ukraine-heads.toml
# (copy them with --ship).
#
#   scripts/quality.sh [--bootstrap N] [--ship]
#
# Needs scripts/setup.sh first. Nothing here is fitted on a test split:
# SIB-200, RUW and ukraine-aid use their dev splits; Mawqif and ANERCorp have
# none, so 10 % of their train split (seeded) is held out as dev. UNER PUD
# has only a test split: the NER head never sees it (cross-lingual transfer).
# About an hour on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/datasets}
OUT=${OUT:-target/quality}
BOOT=1000
SHIP=0
while [[ $# -gt 0 ]]; do
  case $1 in
    --bootstrap) BOOT=$2; shift 2 ;;
    --ship) SHIP=1; shift ;;
    *) echo "quality: unknown option $1" >&2; exit 2 ;;
  esac
done
P=target/release/paratag
[[ -x $P ]] || { echo "quality: $P missing; run scripts/setup.sh" >&2; exit 1; }
mkdir -p "$OUT/heads"
CB=datasets/codebooks
UA=datasets/ukraine-aid
H=$OUT/heads
SIB=(arb_Arab ary_Arab arz_Arab eng_Latn fra_Latn deu_Latn spa_Latn rus_Cyrl ukr_Cyrl)
SIBCOLS=(--gold-col article_id=index_id --gold-col topic=category)
# Tuned heads: the top 2 encoder layers fine-tuned (see README).
TUNE=(--tune-layers 2 --layer-lr 1e-4 --epochs 8 --patience 2)

ev() { # name gold [args]
  local name=$1 gold=$2; shift 2
  echo "quality: eval $name" >&2
  "$P" eval --gold "$gold" --bootstrap "$BOOT" --quiet --json "$OUT/$name.json" \
    --report "$OUT/$name.md" --plots "$OUT/plots-$name" "$@"
}
fit() { # paratag train ARGS, timed
  local t0=$SECONDS
  echo "quality: train $*" >&2
  "$P" train "$@"
  echo "quality: trained in $((SECONDS - t0)) s" >&2
}

# Topic, SIB-200: zero-shot similarity on arb, then one linear head and one
# tuned head on all nine variants' train splits (dev: their dev splits).
ev sib200-arb_Arab-zeroshot "$SHARED/sib200/arb_Arab/test.tsv" "${SIBCOLS[@]}" -c $CB/sib200.toml
args=()
for l in "${SIB[@]}"; do
  args+=(--train "$SHARED/sib200/$l/train.tsv" --dev "$SHARED/sib200/$l/dev.tsv")
done
fit topic "${args[@]}" "${SIBCOLS[@]}" -c $CB/sib200.toml -o "$H/sib200-topic"
fit topic "${args[@]}" "${SIBCOLS[@]}" -c $CB/sib200.toml -o "$H/sib200-topic-tuned" "${TUNE[@]}" --batch-size 32
for l in "${SIB[@]}"; do
  ev "sib200-$l-head" "$SHARED/sib200/$l/test.tsv" "${SIBCOLS[@]}" -c $CB/sib200.toml --heads "$H/sib200-topic"
  ev "sib200-$l-tuned" "$SHARED/sib200/$l/test.tsv" "${SIBCOLS[@]}" -c $CB/sib200.toml --heads "$H/sib200-topic-tuned"
done

# Stance, Mawqif: one tuned head per target, 10 % of train held out as dev.
MAW=(--gold-col article_id=ID --gold-col target=target --gold-col stance=stance)
heads=()
for t in covid_vaccine digital_transformation women_empowerment; do
  fit stance --train "$SHARED/mawqif/Mawqif_AllTargets_Train.csv" "${MAW[@]}" \
    -c $CB/mawqif.toml --target $t --holdout 0.1 -o "$H/mawqif-$t-tuned" "${TUNE[@]}"
  heads+=("$H/mawqif-$t-tuned")
done
ev mawqif-tuned "$SHARED/mawqif/Mawqif_AllTargets_Test.csv" "${MAW[@]}" -c $CB/mawqif.toml --heads "${heads[@]}"

# Stance toward Ukraine, RUW: train split, val split as dev.
R=$SHARED/ruw_russia_ukraine_stance
RUW=(--gold-encoding cp1252 --gold-col text=Tweet --gold-col "stance_ukraine=Stance 2")
fit stance --train "$R/raw_train_Russia_Ukraine.csv" --dev "$R/raw_val_Russia_Ukraine.csv" \
  "${RUW[@]}" -c $CB/ruw.toml -o "$H/ruw-ukraine-tuned" "${TUNE[@]}"
ev ruw-ukraine-tuned "$R/raw_test_Russia_Ukraine.csv" "${RUW[@]}" -c $CB/ruw.toml --heads "$H/ruw-ukraine-tuned"

# ukraine-aid (the shipped heads): topic and stance on its train split, dev
# for early stopping and temperature; then the thresholds are calibrated on
# dev (the researcher's loop), giving the shipped ukraine-heads.toml.
fit topic --train $UA/train.jsonl --dev $UA/dev.jsonl -c $CB/ukraine.toml -o "$H/ukraine-topic"
fit stance --train $UA/train.jsonl --dev $UA/dev.jsonl -c $CB/ukraine.toml -o "$H/ukraine-stance" "${TUNE[@]}" --batch-size 8
"$P" calibrate --gold $UA/dev.jsonl -c $CB/ukraine.toml -o "$OUT/ukraine-heads.toml" \
  --heads "$H/ukraine-topic" "$H/ukraine-stance"

# NER: one head on ANERCorp train plus ukraine-aid train (10 % held out as
# dev), measured on ANERCorp test, UNER PUD en/de/ru and ukraine-aid test.
fit ner --train "$SHARED/anercorp_camel/ANERCorp_CamelLab_train.txt" --train $UA/train.jsonl \
  --holdout 0.1 --entity-map PERS=PER -o "$H/ukraine-ner" "${TUNE[@]}"
ev anercorp-ner "$SHARED/anercorp_camel/ANERCorp_CamelLab_test.txt" --entity-map PERS=PER --heads "$H/ukraine-ner"
for l in en de ru; do
  ev "uner-$l-ner" "$SHARED/uner_pud_en_de_ru/${l}_pud-ud-test.iob2" --gold-format conll --heads "$H/ukraine-ner"
done
ev ukraine-aid "$UA/test.jsonl" -c "$OUT/ukraine-heads.toml" --by lang \
  --heads "$H/ukraine-topic" "$H/ukraine-stance" "$H/ukraine-ner"

if [[ $SHIP == 1 ]]; then
  mkdir -p models/heads
  for h in ukraine-topic ukraine-stance ukraine-ner; do
    rm -rf "models/heads/$h" && cp -r "$H/$h" "models/heads/$h"
  done
  cp "$OUT/ukraine-heads.toml" $CB/ukraine-heads.toml
  echo "quality: shipped heads -> models/heads/" >&2
fi

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def f(e):
    if e is None or e.get("value") is None: return "–"
    return f'{e["value"]:.3f} [{e["ci_low"]:.3f}, {e["ci_high"]:.3f}]'
print("| data (test split) | task | n | accuracy [95% CI] | macro-F1 [95% CI] | F_avg (favor, against) |")
print("|---|---|---|---|---|---|")
ner = []
for name in sorted(x[:-5] for x in os.listdir(out) if x.endswith(".json")):
    r = json.load(open(os.path.join(out, name + ".json")))
    for t in r["tasks"]:
        fa = "–" if t["f_avg"] is None else f'{t["f_avg"]:.3f}'
        print(f'| {name} | {t["task"]} | {t["n"]} | {f(t["accuracy"])} | {f(t["macro_f1"])} | {fa} |')
    if r.get("ner"):
        ner.append((name, r["ner"]))
print()
print("| data (test split) | paragraphs | entity micro-F1 exact (P, R) | partial F1 | per type (exact F1) |")
print("|---|---|---|---|---|")
for name, n in ner:
    e, p = n["exact"], n["partial"]
    types = ", ".join(f'{t["label"]} {t["f1"]:.3f}' for t in e["per_type"])
    print(f'| {name} | {n["n"]} | {e["micro"]["f1"]:.3f} ({e["micro"]["precision"]:.3f}, {e["micro"]["recall"]:.3f}) | {p["micro"]["f1"]:.3f} | {types} |')
PY
