#!/usr/bin/env bash
# Builds what a real node of the test cluster runs, from source, at the versions pinned in
# hack/versions.env (the container runtime, runc and the CNI plugins are Debian's: see
# hack/install-node-packages.sh):
#
#   kubelet         k8s.io/kubernetes/cmd/kubelet at KUBERNETES_VERSION, through the same wrapper
#                   go.mod as hack/build-controlplane.sh (hack/lib/k8s-module.sh): the two share
#                   Go's module and build caches, so after the control plane the kubelet costs
#                   only its own packages
#   coredns         github.com/coredns/coredns at COREDNS_VERSION (the cluster's DNS), with the
#                   plugins the node's Corefile uses
#   pause           build/pause/linux/pause.c of the k8s.io/kubernetes module, compiled statically
#   pause.oci.tar   the sandbox image: an OCI image archive holding /pause (entrypoint, user
#                   65535), packed with umoci; its name is in pause.image (for containerd's
#                   sandbox_image and `ctr images import --base-name`)
#
# Output: $OPTIKUBE_NODE_CACHE/<key>/; prints that directory last. Like build-controlplane.sh, a
# finished directory carries a .complete stamp naming the build recipe (a second run costs
# nothing), and without it each artifact is checked and only the missing or wrong ones are
# rebuilt, so an interrupted build resumes. Needs Go, gcc with a static libc (libc6-dev) and umoci.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/go-builds.sh
source "$here/lib/go-builds.sh"

RECIPE=2
# A name of our own, never a registry's: the image is imported, never pulled.
PAUSE_REPOSITORY=localhost/optikube/pause
ARTIFACTS=(kubelet coredns pause pause.oci.tar)

log() { printf '[build-node] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

kubernetes_module_dir() { # the k8s.io/kubernetes module's source (downloaded on demand)
  go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" | sed -n 's/.*"Dir": "\(.*\)",/\1/p'
}

# The pause image's tag, as the module's build/pause/Makefile says (TAG ?= 3.10.2).
pause_tag() {
  sed -n 's/^TAG ?= *//p' "$(kubernetes_module_dir)/build/pause/Makefile"
}

version_of() { # dir name
  local path="$1/$2"
  case "$2" in
    kubelet) "$path" --version 2>/dev/null | head -n1 ;;
    coredns) "$path" -version 2>/dev/null | head -n1 ;;
    pause) "$path" -v 2>/dev/null | head -n1 ;;
    # the name the archive's index gives the image (what ctr images import names it)
    pause.oci.tar) [[ -s "$path" ]] && tar -xOf "$path" ./index.json | sed -n 's/.*"org.opencontainers.image.ref.name":"\([^"]*\)".*/\1/p' ;;
  esac
}

expected_version() { # name
  case "$1" in
    kubelet) echo "Kubernetes ${KUBERNETES_VERSION}" ;;
    coredns) echo "CoreDNS-${COREDNS_VERSION#v}" ;;
    pause) echo "pause.c v${PAUSE_TAG}-${KUBERNETES_VERSION}" ;;
    pause.oci.tar) echo "${PAUSE_REPOSITORY}:${PAUSE_TAG}" ;;
  esac
}

cache_root="${OPTIKUBE_NODE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/optikube/node}"
key="k8s-${KUBERNETES_VERSION}_coredns-${COREDNS_VERSION}"
claim_build_cache "$cache_root" "$key"

command -v go >/dev/null || die "Go is required to build the node's binaries"
command -v gcc >/dev/null || die "gcc (and libc6-dev, for -static) is required to build pause"
command -v umoci >/dev/null || die "umoci is required to pack the pause image (bash hack/install-node-packages.sh)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
# go mod download needs a module to run in; any empty one will do.
(cd "$work" && go mod init optikube.io/scratch >/dev/null 2>&1)
PAUSE_TAG="$(cd "$work" && pause_tag)"
[[ -n "$PAUSE_TAG" ]] || die "no TAG in build/pause/Makefile of k8s.io/kubernetes@${KUBERNETES_VERSION}"

needs() { # name
  if verified "$out" "$1"; then
    log "$1 is already built: $(version_of "$out" "$1")"
    return 1
  fi
  return 0
}

# CoreDNS with only the plugins the node's Corefile uses (realnode/configs.py): its own main
# imports them instead of core/plugin, which pulls in every plugin and its cloud SDKs; that halves
# the build. Plugins register themselves on import; coremain orders them by its directive list.
COREDNS_PLUGINS=(bind cache errors kubernetes ready template)

build_coredns() {
  local mod="$work/coredns"
  mkdir -p "$mod"
  (
    cd "$mod"
    go mod init optikube.io/coredns >/dev/null 2>&1
    {
      printf '// CoreDNS with the plugins of the test cluster'"'"'s Corefile only.\npackage main\n\nimport (\n'
      local plugin
      for plugin in "${COREDNS_PLUGINS[@]}"; do printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$plugin"; done
      printf '\n\t"github.com/coredns/coredns/coremain"\n)\n\nfunc main() { coremain.Run() }\n'
    } >main.go
    go get "github.com/coredns/coredns@${COREDNS_VERSION}" >/dev/null 2>&1
    go mod tidy >/dev/null 2>&1
    log "building coredns ${COREDNS_VERSION} (plugins: ${COREDNS_PLUGINS[*]})"
    go build -trimpath -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=${COREDNS_VERSION}" -o "$out/coredns" .
  )
}

build_pause() {
  command -v gcc >/dev/null || die "gcc is required to build pause"
  local source
  source="$(cd "$work" && kubernetes_module_dir)/build/pause/linux/pause.c"
  log "compiling pause ${PAUSE_TAG} from k8s.io/kubernetes@${KUBERNETES_VERSION}"
  # The flags of build/pause/Makefile; VERSION names the module instead of a git revision.
  gcc -Os -Wall -Werror -static "-DVERSION=v${PAUSE_TAG}-${KUBERNETES_VERSION}" -o "$out/pause.tmp" "$source"
  strip "$out/pause.tmp" 2>/dev/null || true
  mv "$out/pause.tmp" "$out/pause"
}

# An OCI image archive of /pause, as build/pause/Dockerfile makes it (FROM scratch, USER
# 65535:65535, ENTRYPOINT ["/pause"]), packed by umoci without a daemon or a registry.
build_pause_image() {
  command -v umoci >/dev/null || die "umoci is required to pack the pause image (bash hack/install-node-packages.sh)"
  local layout="$work/pause-layout" bundle="$work/pause-bundle" ref="$work/pause-layout:${PAUSE_TAG}"
  local rootless=()
  [[ "$(id -u)" == 0 ]] || rootless=(--rootless)
  log "packing ${PAUSE_REPOSITORY}:${PAUSE_TAG} with umoci"
  umoci init --layout "$layout"
  umoci new --image "$ref"
  umoci unpack "${rootless[@]}" --image "$ref" "$bundle" >/dev/null
  install -m 0755 "$out/pause" "$bundle/rootfs/pause"
  umoci repack --image "$ref" --history.created_by "COPY pause /pause (k8s.io/kubernetes@${KUBERNETES_VERSION} build/pause)" "$bundle"
  # the full name as the tag, so that `ctr images import` names the image by it
  umoci config --image "$ref" --tag "${PAUSE_REPOSITORY}:${PAUSE_TAG}" \
    --history.created_by 'ENTRYPOINT ["/pause"], USER 65535:65535' \
    --os linux --architecture amd64 --config.entrypoint /pause --config.user 65535:65535
  umoci rm --image "$ref"
  umoci gc --layout "$layout"
  tar --sort=name --owner=0 --group=0 --numeric-owner -C "$layout" -cf "$out/pause.oci.tar.tmp" .
  mv "$out/pause.oci.tar.tmp" "$out/pause.oci.tar"
  echo "${PAUSE_REPOSITORY}:${PAUSE_TAG}" >"$out/pause.image"
}

if needs coredns; then build_coredns; fi
if needs pause; then
  build_pause
  rm -f "$out/pause.oci.tar"
fi
if needs pause.oci.tar; then build_pause_image; fi
if needs kubelet; then build_kubernetes_commands "$work" "$out" kubelet; fi

finish_build_cache "node artifacts" "${ARTIFACTS[@]}"
