#!/usr/bin/env bash
# Submits a paratag job as an N-task Slurm array plus a merge job that runs
# once every task has succeeded:
#   scripts/slurm/submit.sh N CORPUS OUT/ [paratag tag options...]
# PARATAG is the paratag command on the nodes (default `paratag` on PATH),
# e.g. an unpacked release bundle on shared storage:
#   PARATAG=/shared/apps/paratag-0.1.0-linux-x86_64/bin/paratag \
#     scripts/slurm/submit.sh 8 corpus.jsonl /shared/out/
# Extra sbatch options (partition, account, CPUs) go in SBATCH_ARGS, e.g.
# SBATCH_ARGS="--partition=cpu --cpus-per-task=4".
# The tasks tag with the profile PARATAG_PROFILE (default `default`, which
# the bundle carries); PARATAG_HOME, if set, is the model store every node
# must see at the same path (see tag-array.sbatch). Both are passed to the
# jobs with the rest of the environment (--export=ALL).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
if [[ $# -lt 3 ]]; then
  echo "usage: $0 N CORPUS OUT/ [paratag tag options]" >&2
  exit 2
fi
n="$1"; corpus="$2"; out="$3"; shift 3
# A profile this host's paratag cannot see will most likely be missing on
# the nodes too: say so before N tasks fail on it (a warning, since the
# nodes may see other storage than this host).
profile="${PARATAG_PROFILE-default}"
# shellcheck disable=SC2206 # PARATAG may be a command of several words
paratag=(${PARATAG:-paratag})
if [[ -n "$profile" ]] && ! "${paratag[@]}" models list 2>/dev/null | awk '$2 == "profile" {print $1}' | grep -xF "$profile" > /dev/null; then
  echo "warning: \`${paratag[*]} models list\` shows no profile \`$profile\` on this host; use the release bundle (it carries \`default\`), install the profile, or set PARATAG_HOME / PARATAG_PROFILE" >&2
fi
# shellcheck disable=SC2086 # SBATCH_ARGS is a list of options
array=$(sbatch --parsable --array="0-$((n - 1))" --export=ALL ${SBATCH_ARGS:-} \
  "$here/tag-array.sbatch" "$corpus" "$out" "$@")
# shellcheck disable=SC2086
merge=$(sbatch --parsable --export=ALL ${SBATCH_ARGS:-} --dependency="afterok:$array" \
  "$here/merge.sbatch" "$out")
echo "submitted: array job $array ($n tasks), merge job $merge (after the array succeeds)"
