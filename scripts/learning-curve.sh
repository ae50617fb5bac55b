#!/usr/bin/env bash
# Learning curve for a NEW stance target: the head for any target
# (models/heads/ukraine-multi/stance_any; the head never saw Mawqif or RUW,
# but the LoRA adapter under it was trained with per-target heads for their
# train splits, so the curve starts optimistic)
# fine-tuned with `paratag train stance --any-target --init` on N labels of
# one held-out target, then measured on that target's test rows.
#
#   scripts/learning-curve.sh [--set mawqif|ruw] [--target NAME] [--sizes 0,50,100,200,500]
#                             [--cap N] [--epochs N] [--seed N]
#
# Defaults: --set mawqif --target "Covid Vaccine" (RUW: Russia or Ukraine),
# sizes 0,50,100,200,500, test cap 1000 rows, 10 epochs (patience 3 on dev),
# seed 1. Labels come from the target's train rows; dev (early stopping and
# the temperature) is the seeded 15 % that scripts/unseen_targets.py uses as
# Mawqif's dev sheet (RUW: its val file), never drawn for training. Size 0
# is the head as shipped. N rows are a seeded sample stratified by label
# (largest remainders). Test rows are scored once per size: this is the
# final measurement. Output: target/learning-curve/SET-TARGET/ (sheets,
# heads, eval reports, curve.md). Needs scripts/setup.sh and ../shared.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/datasets}
SET=mawqif
TARGET=""
SIZES=0,50,100,200,500
CAP=1000
EPOCHS=10
SEED=1
while [[ $# -gt 0 ]]; do
  case $1 in
    --set) SET=$2; shift 2 ;;
    --target) TARGET=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --cap) CAP=$2; shift 2 ;;
    --epochs) EPOCHS=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    *) echo "learning-curve: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n $TARGET ]] || { [[ $SET == mawqif ]] && TARGET="Covid Vaccine" || TARGET=Russia; }
P=target/release/paratag
[[ -x $P ]] || { echo "learning-curve: $P missing; run scripts/setup.sh" >&2; exit 1; }
HEAD=models/heads/ukraine-multi/stance_any
SLUG=$(echo "$SET-$TARGET" | tr 'A-Z ' 'a-z_')
OUT=target/learning-curve/$SLUG
rm -rf "$OUT"; mkdir -p "$OUT"
# A head trained with an adapter sits beside it; this folder holds a copy.
cp -r models/heads/ukraine-multi/adapter "$OUT/adapter"
cp -r "$HEAD" "$OUT/head-0"

python3 - "$SHARED" "$SET" "$TARGET" "$SIZES" "$CAP" "$SEED" "$OUT" <<'PY'
import os, sys
sys.path.insert(0, "scripts")
from unseen_targets import mawqif, ruw, stratified, number_paragraphs, write_sheet
shared, set_, target, sizes, cap, seed, out = sys.argv[1:]
cap, seed = int(cap), int(seed)
def one(sheets):
    rows = [s for s in sheets if s["held_out"] == target]
    if not rows:
        sys.exit(f"learning-curve: {set_} has no target {target!r}")
    return rows[0]["rows"]
if set_ == "mawqif":
    pool = one(mawqif(shared, "train", 0, seed))
    dev = one(mawqif(shared, "dev", 0, seed))
    test = one(mawqif(shared, "test", cap, seed))
else:
    pool = one(ruw(shared, "train", 0, seed, "gbk"))
    dev = one(ruw(shared, "dev", 0, seed, "gbk"))
    test = one(ruw(shared, "test", cap, seed, "gbk"))
held = {r["article_id"] for r in dev}
pool = [r for r in pool if r["article_id"] not in held]
write_sheet(os.path.join(out, "dev.csv"), dev)
write_sheet(os.path.join(out, "test.csv"), test)
for n in (int(x) for x in sizes.split(",")):
    if n > 0:
        rows = number_paragraphs(stratified(pool, n, seed, key=lambda r: r["stance"]))
        write_sheet(os.path.join(out, f"train-{n}.csv"), rows)
print(f"learning-curve: {set_} {target!r}: pool {len(pool)}, dev {len(dev)}, test {len(test)} rows",
      file=sys.stderr)
PY
printf '[codebook]\nname = "learning-curve"\n' > "$OUT/empty.toml"
COLS=(--gold-col target=target --gold-col stance=stance)
echo "| labels | macro-F1 on test [95 % CI] | accuracy | train time |" > "$OUT/curve.md"
echo "|---|---|---|---|" >> "$OUT/curve.md"
for n in ${SIZES//,/ }; do
  t0=$SECONDS
  if [[ $n -gt 0 ]]; then
    "$P" train stance --any-target --init "$HEAD" --train "$OUT/train-$n.csv" --dev "$OUT/dev.csv" \
      "${COLS[@]}" --adapter "$OUT/adapter" -o "$OUT/head-$n" --epochs "$EPOCHS" --patience 3 \
      --seed "$SEED" --batch-size 16 2> "$OUT/train-$n.err"
  fi
  secs=$((SECONDS - t0))
  "$P" eval --force --gold "$OUT/test.csv" -c "$OUT/empty.toml" --heads "$OUT/head-$n" "${COLS[@]}" \
    --bootstrap 1000 --seed "$SEED" -q --json "$OUT/eval-$n.json" --report "$OUT/eval-$n.md"
  python3 - "$OUT/eval-$n.json" "$n" "$secs" >> "$OUT/curve.md" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
t = [t for t in r["tasks"] if t["task"].startswith("stance_") and t["task"] != "stance__pooled"][0]
m, a = t["macro_f1"], t["accuracy"]
print(f"| {sys.argv[2]} | {m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}] | {a['value']:.3f} | {sys.argv[3]} s |")
PY
  tail -n 1 "$OUT/curve.md" >&2
done
cat "$OUT/curve.md"
