#!/usr/bin/env bash
# Submits a paratag job as an N-task Slurm array plus a merge job that runs
# once every task has succeeded:
#   scripts/slurm/submit.sh N CORPUS OUT/ [paratag tag options...]
# Set PARATAG to the binary's path if it is not on PATH on the nodes. Extra
# sbatch options (partition, account, CPUs) go in SBATCH_ARGS, e.g.
# SBATCH_ARGS="--partition=cpu --cpus-per-task=4".
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ $# -lt 3 ]]; then
  echo "usage: $0 N CORPUS OUT/ [paratag tag options]" >&2
  exit 2
fi
n="$1"; corpus="$2"; out="$3"; shift 3
# shellcheck disable=SC2086 # SBATCH_ARGS is a list of options
array=$(sbatch --parsable --array="0-$((n - 1))" --export=ALL ${SBATCH_ARGS:-} \
  "$here/tag-array.sbatch" "$corpus" "$out" "$@")
# shellcheck disable=SC2086
merge=$(sbatch --parsable --export=ALL ${SBATCH_ARGS:-} --dependency="afterok:$array" \
  "$here/merge.sbatch" "$out")
echo "submitted: array job $array ($n tasks), merge job $merge (after the array succeeds)"
