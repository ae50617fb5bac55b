# Sourced by scripts/setup.sh and scripts/package.sh: installs a profile as
# models/profiles.toml defines it (one list for both, and for the tests).
#
#   install_profile BIN HOME NAME
install_profile() {
  local bin=$1 home=$2 name=$3 root args
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  mapfile -t args < <(python3 - "$root" "$name" <<'PY'
import sys, tomllib
root, name = sys.argv[1], sys.argv[2]
with open(f"{root}/models/profiles.toml", "rb") as f:
    p = tomllib.load(f).get(name)
if p is None:
    sys.exit(f"models/profiles.toml has no profile {name!r}")
print(f"{root}/{p['codebook']}")
for h in p["heads"]:
    print(f"{root}/{h}")
PY
  )
  # (A process substitution's failure does not reach us: check its output.)
  [[ ${#args[@]} -ge 2 ]] || return 1
  PARATAG_HOME="$home" "$bin" models install-profile "$name" -c "${args[0]}" --heads "${args[@]:1}" >/dev/null
}
