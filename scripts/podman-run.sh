# Sourced by scripts/container.sh and scripts/k8s/check.sh: sets the array
# `podman_args`, the `podman run` options this host needs for IMAGE ($1).
# Usually none. Where the runtime refuses the defaults (a sandbox that forbids
# raising RLIMIT_NPROC, or cgroups in hybrid mode that crun does not
# support), it says so and falls back to runc with the process's own limits.
# PODMAN_RUN_ARGS, when set, is used as it is.
# shellcheck shell=bash
podman_args=()
if [[ -n ${PODMAN_RUN_ARGS:-} ]]; then
  # shellcheck disable=SC2206 # a list of options
  podman_args=(${PODMAN_RUN_ARGS})
elif ! err=$(podman run --rm --network none --entrypoint /bin/true "$1" 2>&1); then
  printf 'podman: `podman run` failed here: %s\n' "${err##*$'\n'}" >&2
  podman_args=(--runtime runc --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=4096:4096)
  printf 'podman: using %s (this sandbox'"'"'s limits; an ordinary host needs none)\n' "${podman_args[*]}" >&2
  podman run --rm --network none "${podman_args[@]}" --entrypoint /bin/true "$1" > /dev/null
fi
