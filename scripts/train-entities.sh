#!/usr/bin/env bash
# Retrains the default profile's entity head, models/heads/ukraine-multi/entities:
# two tuned encoder layers over layer 10 of the adapted encoder (the
# shipped adapter), on a language-balanced mix of the shared NER sets
# (scripts/ner_mix.py) plus ukraine-aid train. Early stopping on the mix's
# dev part and ukraine-aid dev; no test split is read.
#
#   scripts/train-entities.sh [OUT]     (default target/ner-train)
#
# Writes OUT/entities beside OUT/adapter: a copy of ADAPTER (default the
# shipped one, models/heads/ukraine-multi/adapter) unless OUT/adapter is
# already it (scripts/quality.sh trains a new adapter there first). About 35 minutes on 2 CPU cores (Intel Xeon,
# f32; 2026-12-07). Needs scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-target/ner-train}
SHARED=${SHARED:-../shared/datasets}
P=target/release/paratag
[[ -x $P ]] || { echo "train-entities: $P missing; run scripts/setup.sh" >&2; exit 1; }
A=$SHARED/anercorp_camel
mkdir -p target/quality "$OUT"
python3 scripts/clitics.py "$A/ANERCorp_CamelLab_train.txt" target/quality/anercorp-train.jsonl
python3 scripts/ner_mix.py --shared "$SHARED" --out target/ner-mix
ADAPTER=${ADAPTER:-models/heads/ukraine-multi/adapter}
if [[ $(realpath "$ADAPTER") != $(realpath -m "$OUT/adapter") ]]; then
  rm -rf "$OUT/adapter" && cp -r "$ADAPTER" "$OUT/adapter"
fi
args=()
for f in target/ner-mix/train/*; do args+=(--train "$f"); done
for f in target/ner-mix/dev/*; do args+=(--dev "$f"); done
"$P" train ner --adapter "$OUT/adapter" -o "$OUT/entities" "${args[@]}" \
  --train datasets/ukraine-aid/train.jsonl --dev datasets/ukraine-aid/dev.jsonl \
  --tune-layers 2 --epochs 5 --patience 2
echo "train-entities: ship with: cp $OUT/entities/head.* models/heads/ukraine-multi/entities/" >&2
