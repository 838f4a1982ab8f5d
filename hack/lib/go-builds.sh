# shellcheck shell=bash
# What the two Go builds share, hack/build-controlplane.sh and hack/build-node.sh (sourced by both):
# the pinned versions, the k8s.io/kubernetes module build and the stamped cache.
_go_builds_lib="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../versions.env
source "$_go_builds_lib/../versions.env"
# shellcheck source=k8s-module.sh
source "$_go_builds_lib/k8s-module.sh"

#   claim_build_cache <cache root> <key>
#
# Sets `out` (the build's directory) and `stamp`. When the directory holds a complete build of this
# RECIPE it prints `out` and exits the script with 0; otherwise it creates the directory and takes
# the key's lock (fd 9, held until the script exits), so that two builds of one key (make and a
# test run, say) never interleave, and looks again once it holds the lock.
claim_build_cache() {
  local root="$1" key="$2"
  out="$root/$key"
  stamp="$out/.complete"
  if [[ "$(cat "$stamp" 2>/dev/null)" == "recipe=$RECIPE" ]]; then
    echo "$out"
    exit 0
  fi
  mkdir -p "$out"
  if command -v flock >/dev/null; then
    exec 9>"$root/.$key.lock"
    flock 9
    if [[ "$(cat "$stamp" 2>/dev/null)" == "recipe=$RECIPE" ]]; then
      echo "$out"
      exit 0
    fi
  fi
}

# True when dir/name is there and reports exactly the pinned version: `version_of` (what it reports)
# and `expected_version` (what it should) are each script's own.
verified() { # dir name
  [[ -e "$1/$2" ]] || return 1
  local got want
  got="$(version_of "$1" "$2" || true)"
  want="$(expected_version "$2")"
  [[ "$got" == "$want" || "$got" == "$want "* ]]
}

# The build's end: every name verified (their versions in versions.txt), the stamp written, and the
# directory printed, the script's last line of output.
finish_build_cache() { # what (for the log) name...
  local what="$1" name
  shift
  for name in "$@"; do
    verified "$out" "$name" || die "$out/$name reports '$(version_of "$out" "$name" || true)', expected '$(expected_version "$name")'"
    printf '%s: %s\n' "$name" "$(version_of "$out" "$name")"
  done >"$out/versions.txt"
  echo "recipe=$RECIPE" >"$stamp"
  log "$what ready in $out"
  echo "$out"
}
