#!/usr/bin/env bash
# tag-array.sbatch on a real one-node Slurm cluster on this machine, with
# the release bundle as a cluster user gets it:
#  1. installs slurm-wlm and munge from Debian if missing, starts munged,
#     slurmctld and slurmd for localhost (configuration under $WORK);
#  2. unpacks the release bundle (BUNDLE=FILE, default the one
#     scripts/package.sh writes into $WORK) under $WORK, and runs it with
#     HOME in $WORK and PARATAG_HOME unset, so the profile PARATAG_PROFILE
#     (default `default`) comes from the bundle's own store, as on a node
#     with no set-up;
#  3. tags a small corpus (the ukraine-aid articles, repeated with new ids)
#     once as a single run, and once as a 4-task array plus merge job
#     through submit.sh with PARATAG pointing at the bundle and the sbatch
#     scripts' own resource requests;
#  4. requeues one task while it runs (Slurm kills it, the restarted task
#     resumes from its parts), waits for the merge, and checks the merged
#     dataset equals the single run.
# Needs root and scripts/setup.sh (the release build and its Python). Not
# part of CI. It stops any slurmctld/slurmd already running here.
#   [BUNDLE=FILE] [PARATAG_PROFILE=NAME] scripts/slurm/local-test.sh [COPIES]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="${WORK:-/tmp/paratag-slurm}"
copies="${1:-3}"
py="$root/.pyenv/bin/python"
say() { printf 'slurm-test: %s\n' "$*" >&2; }
[[ -x "$py" ]] || { say "no $py (scripts/setup.sh makes it)"; exit 1; }
# A cluster from an earlier run may still use $work.
pkill -x slurmctld 2>/dev/null || true
pkill -x slurmd 2>/dev/null || true
rm -rf "$work" && mkdir -p "$work"/{state,spool,run,apps,home}
bundle="${BUNDLE:-}"
if [[ -z "$bundle" ]]; then
  "$root/scripts/package.sh" "$work/dist" >/dev/null
  bundle=$(ls "$work"/dist/paratag-*.tar.*)
fi
tar -C "$work/apps" -xaf "$bundle"
bin=$(ls -d "$work"/apps/paratag-*/bin/paratag)
say "bundle $bundle unpacked: $bin"
# The single run and the array tasks (sbatch passes the environment on)
# see only the bundle's store and an empty HOME.
unset PARATAG_HOME
export HOME="$work/home"
export PARATAG_PROFILE="${PARATAG_PROFILE:-default}"
"$bin" models list | awk '$2 == "profile" {print $1}' | grep -xF "$PARATAG_PROFILE" >/dev/null || {
  say "the bundle has no profile $PARATAG_PROFILE"; exit 1; }
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  say "installing slurm-wlm and munge"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null
fi
# munge: one key, one daemon.
if [[ ! -s /etc/munge/munge.key ]]; then mungekey -c -f -k /etc/munge/munge.key; fi
chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
mkdir -p /run/munge && chown munge:munge /run/munge
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
host="$(hostname -s)"
cpus="$(nproc)"
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 2048 ))
mkdir -p /etc/slurm
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=paratag-test
SlurmctldHost=$host(127.0.0.1)
AuthType=auth/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/run/slurmctld.pid
SlurmdPidFile=$work/run/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
MinJobAge=3600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld
slurmd
for _ in $(seq 60); do sinfo -h -o %T 2>/dev/null | grep -q idle && break; sleep 1; done
sinfo

say "corpus: ukraine-aid articles x $copies"
"$py" - "$root/datasets/ukraine-aid/articles.jsonl" "$work/corpus.jsonl" "$copies" <<'PY'
import json, sys
src, dst, k = sys.argv[1], sys.argv[2], int(sys.argv[3])
rows = [json.loads(l) for l in open(src, encoding="utf-8")]
with open(dst, "w", encoding="utf-8") as f:
    for c in range(k):
        for r in rows:
            f.write(json.dumps({**r, "id": f"{r['id']}-copy{c}"}, ensure_ascii=False) + "\n")
PY
say "single run, profile $PARATAG_PROFILE"
"$bin" tag "$work/corpus.jsonl" -o "$work/single.parquet" --profile "$PARATAG_PROFILE" -q

say "array of 4 tasks + merge"
cd "$work"
out=$(PARATAG="$bin" \
  "$root/scripts/slurm/submit.sh" 4 "$work/corpus.jsonl" "$work/out/" --chunk-rows 40)
echo "$out"
array=$(sed -n 's/.*array job \([0-9]*\).*/\1/p' <<<"$out")
merge=$(sed -n 's/.*merge job \([0-9]*\).*/\1/p' <<<"$out")
# Requeue task 1 once it is running and has written a part.
victim="${array}_1"
for _ in $(seq 600); do
  state=$(squeue -h -j "$victim" -o %T 2>/dev/null || true)
  # Parts wait under _temporary/ until `merge` commits the job.
  if [[ "$state" == RUNNING ]] && ls "$work/out/shard-1-of-4/_temporary/"part-*.pending >/dev/null 2>&1; then
    parts=$(ls "$work/out/shard-1-of-4/_temporary/"part-*.pending | wc -l)
    say "requeueing $victim while RUNNING with $parts parts written"
    scontrol requeue "$victim"
    break
  fi
  sleep 0.5
done
for _ in $(seq 1800); do
  [[ -z "$(squeue -h -j "$array,$merge" 2>/dev/null)" ]] && break
  sleep 1
done
say "jobs done"
scontrol show job "$merge" | grep -E "JobState|ExitCode" || true
for f in paratag-tag-*.log paratag-merge-*.log; do echo "--- $f"; cat "$f"; done
"$py" - "$work/single.parquet" "$work/out" <<'PY'
import json, sys, polars as pl
single, out = sys.argv[1], sys.argv[2]
m = json.load(open(f"{out}/_manifest.json"))
a = pl.read_parquet(single).sort("article_id", "paragraph")
b = pl.scan_parquet(f"{out}/*/*.parquet").collect().sort("article_id", "paragraph")
dup = b.height - b.select("article_id", "paragraph").unique().height
# Which of several paragraphs with the same text is the first depends on
# the shard split (docs/commands.md, "Repeated paragraphs"); nothing else may.
first = ["dup_of_article_id", "dup_of_paragraph"]
same = a.drop(first).equals(b.drop(first))
copies = (a["dup_of_article_id"].is_not_null().sum(), b["dup_of_article_id"].is_not_null().sum())
print(f"merged manifest: {m['shards']} shards, {len(m['parts'])} parts, {m['articles']} articles; "
      f"single run {a.height} rows, array {b.height} rows, {dup} duplicated; "
      f"copied paragraphs {copies[0]} (single) and {copies[1]} (shards); identical but for dup_of_*: {same}")
sys.exit(0 if same and dup == 0 else 1)
PY
