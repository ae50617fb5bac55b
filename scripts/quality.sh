#!/usr/bin/env bash
# Trains paratag heads on the train (and dev) splits of the shared labeled
# data and measures them once on the test splits with `paratag eval`; prints
# one table. Heads and reports go to $OUT (default target/quality).
#
#   scripts/quality.sh [--bootstrap N]
#
# Needs scripts/setup.sh first. Nothing here is fitted on a test split:
# SIB-200 and RUW use their dev splits; Mawqif has none, so 10 % of its
# train split (seeded) is held out as dev. NER heads are not implemented yet.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/datasets}
OUT=${OUT:-target/quality}
BOOT=1000
if [[ "${1:-}" == "--bootstrap" ]]; then BOOT=$2; fi
P=target/release/paratag
[[ -x $P ]] || { echo "quality: $P missing; run scripts/setup.sh" >&2; exit 1; }
mkdir -p "$OUT/heads"
CB=datasets/codebooks
SIB=(arb_Arab ary_Arab arz_Arab eng_Latn fra_Latn deu_Latn spa_Latn rus_Cyrl ukr_Cyrl)
SIBCOLS=(--gold-col article_id=index_id --gold-col topic=category)

ev() { # name gold [args]
  local name=$1 gold=$2; shift 2
  echo "quality: eval $name" >&2
  "$P" eval --gold "$gold" --bootstrap "$BOOT" --quiet --json "$OUT/$name.json" \
    --report "$OUT/$name.md" --plots "$OUT/plots-$name" "$@"
}

# Topic: one head on all nine SIB-200 variants' train splits, early stopping
# and temperature on their dev splits.
args=()
for l in "${SIB[@]}"; do
  args+=(--train "$SHARED/sib200/$l/train.tsv" --dev "$SHARED/sib200/$l/dev.tsv")
done
"$P" train topic "${args[@]}" "${SIBCOLS[@]}" -c $CB/sib200.toml -o "$OUT/heads/sib200-topic"
for l in "${SIB[@]}"; do
  ev "sib200-$l-head" "$SHARED/sib200/$l/test.tsv" "${SIBCOLS[@]}" -c $CB/sib200.toml \
    --heads "$OUT/heads/sib200-topic"
done

# Stance, Mawqif: one head per target, 10 % of train held out as dev.
MAW=(--gold-col article_id=ID --gold-col target=target --gold-col stance=stance)
heads=()
for t in covid_vaccine digital_transformation women_empowerment; do
  "$P" train stance --train "$SHARED/mawqif/Mawqif_AllTargets_Train.csv" "${MAW[@]}" \
    -c $CB/mawqif.toml --target $t --holdout 0.1 -o "$OUT/heads/mawqif-$t"
  heads+=("$OUT/heads/mawqif-$t")
done
ev mawqif-head "$SHARED/mawqif/Mawqif_AllTargets_Test.csv" "${MAW[@]}" -c $CB/mawqif.toml \
  --heads "${heads[@]}"

# Stance toward Ukraine, RUW: train split, val split as dev.
R=$SHARED/ruw_russia_ukraine_stance
RUW=(--gold-encoding cp1252 --gold-col text=Tweet --gold-col "stance_ukraine=Stance 2")
"$P" train stance --train "$R/raw_train_Russia_Ukraine.csv" --dev "$R/raw_val_Russia_Ukraine.csv" \
  "${RUW[@]}" -c $CB/ruw.toml -o "$OUT/heads/ruw-ukraine"
ev ruw-ukraine-head "$R/raw_test_Russia_Ukraine.csv" "${RUW[@]}" -c $CB/ruw.toml \
  --heads "$OUT/heads/ruw-ukraine"

python3 - "$OUT" <<'PY'
import json, os, sys
out = sys.argv[1]
def f(e):
    if e is None or e.get("value") is None: return "–"
    return f'{e["value"]:.3f} [{e["ci_low"]:.3f}, {e["ci_high"]:.3f}]'
print("| data (test split) | task | n | accuracy [95% CI] | macro-F1 [95% CI] | F_avg (favor, against) |")
print("|---|---|---|---|---|---|")
for name in sorted(x[:-5] for x in os.listdir(out) if x.endswith(".json")):
    r = json.load(open(os.path.join(out, name + ".json")))
    for t in r["tasks"]:
        fa = "–" if t["f_avg"] is None else f'{t["f_avg"]:.3f}'
        print(f'| {name} | {t["task"]} | {t["n"]} | {f(t["accuracy"])} | {f(t["macro_f1"])} | {fa} |')
PY
