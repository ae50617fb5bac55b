#!/usr/bin/env bash
# The property tests of tests/it/props.rs at scale: CASES per property
# (default 200000; five properties, so a million cases) from SEED.
#   scripts/proptest.sh [CASES] [SEED]
# A failure prints proptest's minimal failing input; keep it as a named
# regression test in tests/it/props.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
cases="${1:-200000}"
seed="${2:-$(date +%s)}"
props=(segments_are_code_point_slices html_pages_segment_into_slices
       jsonl_rows_read_back_and_junk_is_reported json_escapes_never_panic csv_rows_read_back)
echo "proptest: ${#props[@]} properties x $cases cases, seed $seed"
start=$(date +%s)
PARATAG_PROPTEST_CASES="$cases" PARATAG_PROPTEST_SEED="$seed" \
  cargo test --release --test it -- --exact $(printf 'props::%s ' "${props[@]}") --test-threads 2
echo "proptest: $(( ${#props[@]} * cases )) cases passed in $(( $(date +%s) - start )) s (seed $seed)"
