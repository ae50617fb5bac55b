#!/usr/bin/env bash
# Main-text extraction benchmark: paratag's HTML stage (HTML -> article paragraphs,
# boilerplate dropped) against trafilatura, readability-lxml and goose3 on the
# boilerplate_dev pages (1,349 web pages, 6 sets, gold main text), scored with
# the data set's own score.py (page-mean bag-of-whitespace-tokens P/R/F1).
#
#   scripts/bench-extract.sh                    all tools, all pages
#   scripts/bench-extract.sh --quick 5          first 5 pages of each set (smoke test)
#   scripts/bench-extract.sh --tools paratag    a subset (paratag,trafilatura,readability,goose3)
#   scripts/bench-extract.sh -o DIR             results folder (default target/bench-extract/)
#   scripts/bench-extract.sh --help             all options (scripts/bench_extract.py)
#
# Needs: the data at ../shared/datasets/boilerplate_dev/ beside the repo (or env
# BOILERPLATE_DEV=DIR), python3 (3.9+) with venv, PyPI access the first time,
# and a release build (cargo build --release) for paratag; env PARATAG_BIN
# overrides the binary, env PARATAG_ARGS adds arguments to its `tag` call. No
# binary: paratag is skipped with a message, the peers still run.
# Makes (or reuses) a venv with the pinned packages below at
# ${XDG_CACHE_HOME:-$HOME/.cache}/paratag/bench-extract-venv (about 150 MB;
# re-made when the pins or the Python version change; ~15 s with a warm pip cache).
#
# Pages are decompressed once into a temp folder (<tmp>/<set>/<site>/<id>.html,
# raw bytes; <site> is the host of the page's URL as the data set records it,
# so paratag sees a crawl's sites; a page without one gets its own folder). Each Python tool runs in its own child process over all pages;
# its time is the loop over the pages (reading each file's bytes + extracting,
# after one untimed warm-up page), without interpreter start-up. paratag's time is
# the wall clock of the whole `paratag tag` command. trafilatura is run with ~10
# settings and the best (mean F1) is reported as "trafilatura (best)".
# Tables go to stdout and, with the predictions JSONL, per-page scores and
# results.json, to the results folder.
#
# Takes about 10 minutes on 2 cores for everything (measured: 9.5 min, with another
# job busy on one core): trafilatura's sweep of 10 settings ~5.5 min (25-40 s each),
# goose3 ~2.3 min, readability-lxml ~1 min, paratag ~45 s. --quick 3: ~20 s.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

for a in "$@"; do
  if [[ "$a" == "-h" || "$a" == "--help" ]]; then
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'
    echo "Options of the worker (scripts/bench_extract.py):"
    python3 "$root/scripts/bench_extract.py" --help | sed -n '/^options:/,$p'
    exit 0
  fi
done

venv="${XDG_CACHE_HOME:-$HOME/.cache}/paratag/bench-extract-venv"
# Exact pins: the four tools, pyarrow (reads paratag's Parquet) and everything
# they pull in (pip freeze of a clean install, Python 3.11).
reqs="trafilatura==2.3.1
readability-lxml==0.9
goose3==3.1.22
lxml_html_clean==0.4.7
pyarrow==26.0.1
lxml==6.2.1
babel==2.19.0
beautifulsoup4==4.15.0
certifi==2026.10.19.post1
chardet==5.2.0
charset-normalizer==3.5.3
courlan==1.4.0
cssselect==1.3.0
dateparser==1.5.0
htmldate==1.11.0
idna==3.21
jusText==3.0.2
langdetect==1.0.9
pillow==13.0.0
pyahocorasick==2.3.1
python-dateutil==4.0.0
pytz==2026.6
regex==2026.12.2
requests==2.34.2
six==1.17.0
soupsieve==4.1.4
tld==0.13.2
typing_extensions==4.16.0
tzdata==2026.6
tzlocal==5.4.5
urllib3==2.8.0"
source "$root/scripts/venv.sh"
pinned_venv "$venv" "$reqs" bench-extract

echo "paratag $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?') on $(date -u +%F), $(nproc) cores"
exec "$venv/bin/python" "$root/scripts/bench_extract.py" "$@"
