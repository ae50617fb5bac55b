#!/usr/bin/env bash
# Runs `paratag eval` over the real labeled test sets in ../shared/datasets
# with the default models installed on this machine, and prints one summary
# table. Reports (Markdown, JSON, plots) go to $OUT (default
# target/eval-shared). Test splits are only measured here: nothing is fitted.
#
#   scripts/eval-shared.sh [--bootstrap N]
#
# Needs scripts/setup.sh first (the binary and the offline encoder). NER sets
# are evaluated when a model named `ner` is installed (`paratag models fetch
# ner`); otherwise their gold is only read and checked, and the table says so.
set -euo pipefail
cd "$(dirname "$0")/.."
SHARED=${SHARED:-../shared/datasets}
OUT=${OUT:-target/eval-shared}
BOOT=1000
if [[ "${1:-}" == "--bootstrap" ]]; then BOOT=$2; fi
P=target/release/paratag
[[ -x $P ]] || { echo "eval-shared: $P missing; run scripts/setup.sh" >&2; exit 1; }
[[ -d $SHARED ]] || { echo "eval-shared: $SHARED missing" >&2; exit 1; }
mkdir -p "$OUT"
CB=datasets/codebooks

run() { # name gold [eval args...]
  local name=$1 gold=$2; shift 2
  echo "eval-shared: $name" >&2
  "$P" eval --force --gold "$gold" --bootstrap "$BOOT" --quiet \
    --report "$OUT/$name.md" --json "$OUT/$name.json" --plots "$OUT/plots-$name" "$@"
}

for lang in arb_Arab ary_Arab arz_Arab eng_Latn fra_Latn deu_Latn spa_Latn rus_Cyrl ukr_Cyrl; do
  run "sib200-$lang" "$SHARED/sib200/$lang/test.tsv" -c $CB/sib200.toml \
    --gold-col article_id=index_id --gold-col topic=category
done
run mawqif "$SHARED/mawqif/Mawqif_AllTargets_Test.csv" -c $CB/mawqif.toml \
  --gold-col article_id=ID --gold-col target=target --gold-col stance=stance
# RUW's bytes are GBK, though its SOURCE.md says cp1252 ("…" is A1 AD).
run ruw-ukraine "$SHARED/ruw_russia_ukraine_stance/raw_test_Russia_Ukraine.csv" -c $CB/ruw.toml \
  --gold-encoding gbk --gold-col text=Tweet --gold-col "stance_ukraine=Stance 2"

NER_SETS=("anercorp:$SHARED/anercorp_camel/ANERCorp_CamelLab_test.txt"
          "uner-en:$SHARED/uner_pud_en_de_ru/en_pud-ud-test.iob2"
          "uner-de:$SHARED/uner_pud_en_de_ru/de_pud-ud-test.iob2"
          "uner-ru:$SHARED/uner_pud_en_de_ru/ru_pud-ud-test.iob2")
HAVE_NER=0
"$P" models list 2>/dev/null | grep -qE '^ner .*installed' && HAVE_NER=1
: > "$OUT/ner-check.txt"
for s in "${NER_SETS[@]}"; do
  name=${s%%:*} gold=${s#*:}
  if [[ $HAVE_NER == 1 ]]; then
    run "$name" "$gold" --gold-format conll --entity-map PERS=PER
  else
    echo "$name: $("$P" eval --force --check-gold --gold "$gold" --gold-format conll)" >> "$OUT/ner-check.txt"
  fi
done

python3 - "$OUT" "$HAVE_NER" <<'PY'
import json, os, sys
out, have_ner = sys.argv[1], sys.argv[2] == "1"
def f(e):
    if e is None or e.get("value") is None: return "–"
    if e.get("ci_low") is None: return f'{e["value"]:.3f}'
    return f'{e["value"]:.3f} [{e["ci_low"]:.3f}, {e["ci_high"]:.3f}]'
print("| data (test split) | task | n | accuracy [95% CI] | macro-F1 [95% CI] | F_avg (favor, against) |")
print("|---|---|---|---|---|---|")
rows = sorted(x[:-5] for x in os.listdir(out) if x.endswith(".json"))
for name in rows:
    r = json.load(open(os.path.join(out, name + ".json")))
    for t in r["tasks"]:
        fa = "–" if t["f_avg"] is None else f'{t["f_avg"]:.3f}'
        print(f'| {name} | {t["task"]} | {t["n"]} | {f(t["accuracy"])} | {f(t["macro_f1"])} | {fa} |')
    if r["ner"]:
        m = r["ner"]["exact"]["micro"]; p = r["ner"]["partial"]["micro"]
        print(f'| {name} | entities (exact / partial micro-F1) | {r["ner"]["n"]} | | {m["f1"]:.3f} / {p["f1"]:.3f} | |')
if not have_ner:
    for line in open(os.path.join(out, "ner-check.txt")):
        name = line.split(":")[0]
        print(f"| {name} | entities | – | not measured: no NER model installed (gold read and checked) | | |")
PY
