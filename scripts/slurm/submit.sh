#!/usr/bin/env bash
# Submits a paratag job as an N-task Slurm array plus a merge job that runs
# once every task has succeeded:
#   scripts/slurm/submit.sh N CORPUS OUT/ [paratag tag options...]
# Set PARATAG to the binary's path if it is not on PATH on the nodes. Extra
# sbatch options (partition, account, CPUs) go in SBATCH_ARGS, e.g.
# SBATCH_ARGS="--partition=cpu --cpus-per-task=4".
# The tasks tag with the installed profile PARATAG_PROFILE (default `default`)
# from the model store PARATAG_HOME, which every node must see at the same
# path (see tag-array.sbatch); both are passed to the jobs with the rest of
# the environment (--export=ALL), e.g.
#   PARATAG_HOME=/shared/paratag/home PARATAG_PROFILE=ukraine-multi \
#     scripts/slurm/submit.sh 8 corpus.jsonl /shared/out/
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ $# -lt 3 ]]; then
  echo "usage: $0 N CORPUS OUT/ [paratag tag options]" >&2
  exit 2
fi
n="$1"; corpus="$2"; out="$3"; shift 3
# A profile missing from the store here will most likely be missing on the
# nodes too: say so before N tasks fail on it (a warning, since the nodes may
# see other storage than this host).
home="${PARATAG_HOME:-${XDG_CACHE_HOME:-$HOME/.cache}/paratag/home}"
profile="${PARATAG_PROFILE-default}"
if [[ -n "$profile" && ! -f "$home/profiles/$profile/profile.toml" ]]; then
  echo "warning: no profile \`$profile\` in $home/profiles on this host; install it (scripts/setup.sh installs \`default\`) or set PARATAG_HOME / PARATAG_PROFILE (paratag models list)" >&2
fi
# shellcheck disable=SC2086 # SBATCH_ARGS is a list of options
array=$(sbatch --parsable --array="0-$((n - 1))" --export=ALL ${SBATCH_ARGS:-} \
  "$here/tag-array.sbatch" "$corpus" "$out" "$@")
# shellcheck disable=SC2086
merge=$(sbatch --parsable --export=ALL ${SBATCH_ARGS:-} --dependency="afterok:$array" \
  "$here/merge.sbatch" "$out")
echo "submitted: array job $array ($n tasks), merge job $merge (after the array succeeds)"
