# shellcheck shell=bash
# The arguments of hack/build-images.sh and hack/check-images.sh (sourced by both):
#
#   parse_image_targets "$@"    [operator|trainer|all]... [--out DIR]
#
# Sets `targets` (both images when none is named), `cache` (the images' cache) and `out` (where the
# archives are: --out, OPTIKUBE_IMAGES_OUT, or the cache's own); -h, --help or anything else print
# the script's usage and exit 2.
parse_image_targets() {
  targets=()
  out="${OPTIKUBE_IMAGES_OUT:-}"
  while (($#)); do
    case "$1" in
      operator | trainer) targets+=("$1") ;;
      all) targets+=(operator trainer) ;;
      --out) out="${2:?--out needs a directory}"; shift ;;
      --out=*) out="${1#--out=}" ;;
      -h | --help) usage ;;
      *) log "unknown argument: $1"; usage ;;
    esac
    shift
  done
  ((${#targets[@]})) || targets=(operator trainer)
  cache="${OPTIKUBE_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/optikube/images}"
  out="${out:-$cache/out}"
}

# The script's usage: its header comment up to its second empty comment line (what it does, then
# how it is called).
usage() {
  awk 'NR > 1 && /^#/ { if ($0 == "#" && ++blank == 2) exit; sub(/^# ?/, ""); print; next } NR > 1 { exit }' \
    "$0" >&2
  exit 2
}
