# Sourced by the benchmark scripts: a Python venv with exact pins, made once
# and re-made when the pins, pip's pin or the Python version change.
#
#   pinned_venv DIR "REQUIREMENTS" NAME     (NAME prefixes the message)
pinned_venv() {
  local venv=$1 reqs=$2 name=$3 pip_version=26.3 stamp
  stamp="$(printf '%s\n%s\n%s\n' "$pip_version" "$reqs" "$(python3 -c 'import sys; print(sys.version)')" | sha256sum | cut -d' ' -f1)"
  if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.requirements.sha256" 2>/dev/null)" != "$stamp" ]]; then
    echo "$name: (re)making $venv" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
    printf '%s\n' "$reqs" > "$venv/requirements.txt"
    # An old bundled pip (23.x) trips over some extras: pin a current one first.
    "$venv/bin/pip" install --quiet --disable-pip-version-check "pip==$pip_version"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$venv/requirements.txt"
    echo "$stamp" > "$venv/.requirements.sha256"
  fi
}
