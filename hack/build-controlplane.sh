#!/usr/bin/env bash
# Builds the real Kubernetes control plane used by the cluster test tier from Go modules:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok and helm,
# at the versions pinned in hack/versions.env.
#
# Output: $OPTIKUBE_ASSETS_CACHE/<key>/{kube-apiserver,...}; prints that directory last.
#
# - OPTIKUBE_ASSETS=<dir>: use pre-built binaries from <dir> instead (as controller-runtime's envtest does with
#   KUBEBUILDER_ASSETS); they are checked with --version and nothing is built.
# - A finished directory carries a .complete stamp naming the build recipe, so a second run
#   costs nothing. Without it, each binary is checked with --version and only the missing or
#   wrong ones are (re)built, so an interrupted build resumes where it stopped.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=lib/go-builds.sh
source "$here/lib/go-builds.sh"

# Bump when the way a binary is built changes (flags, ldflags): the stamp then no longer
# matches and every binary is re-verified, rebuilding those whose --version is wrong.
RECIPE=2
BINARIES=(etcd kube-apiserver kube-controller-manager kube-scheduler kubectl kwok helm)

log() { printf '[build-controlplane] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# Prints what `name --version` (or its equivalent) reports.
version_of() { # dir name
  local bin="$1/$2"
  case "$2" in
    kubectl) "$bin" version --client 2>/dev/null | head -n1 ;;
    helm) "$bin" version --short 2>/dev/null ;;
    *) "$bin" --version 2>/dev/null | head -n1 ;;
  esac
}

expected_version() { # name
  case "$1" in
    etcd) echo "etcd Version: ${ETCD_VERSION#v}" ;;
    kube-apiserver | kube-controller-manager | kube-scheduler) echo "Kubernetes ${KUBERNETES_VERSION}" ;;
    kubectl) echo "Client Version: ${KUBERNETES_VERSION}" ;;
    kwok) echo "kwok version ${KWOK_VERSION}" ;;
    helm) echo "${HELM_VERSION}" ;;
  esac
}

if [[ -n "${OPTIKUBE_ASSETS:-}" ]]; then
  dir="$(cd "$OPTIKUBE_ASSETS" 2>/dev/null && pwd)" || die "OPTIKUBE_ASSETS=$OPTIKUBE_ASSETS is not a directory"
  for name in "${BINARIES[@]}"; do
    [[ -x "$dir/$name" ]] || die "OPTIKUBE_ASSETS=$dir has no executable $name"
    verified "$dir" "$name" ||
      log "warning: $dir/$name reports '$(version_of "$dir" "$name" || true)', pinned is '$(expected_version "$name")'"
  done
  echo "$dir"
  exit 0
fi

cache_root="${OPTIKUBE_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/optikube/controlplane}"
key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
claim_build_cache "$cache_root" "$key"

command -v go >/dev/null || die "Go is required to build the control plane (or set OPTIKUBE_ASSETS)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

needs() { # name: true when it is missing or reports the wrong version
  if verified "$out" "$1"; then
    log "$1 is already built: $(version_of "$out" "$1")"
    return 1
  fi
  return 0
}

build_etcd() {
  local mod="$work/etcd"
  mkdir -p "$mod"
  (
    cd "$mod"
    go mod init optikube.io/etcd >/dev/null 2>&1
    cat >main.go <<GO
// A thin wrapper so etcd builds from its published Go module.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
    go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null 2>&1
    go mod tidy >/dev/null 2>&1
    log "building etcd ${ETCD_VERSION}"
    go build -trimpath -ldflags "-s -w" -o "$out/etcd" .
  )
}

install_tool() { # name module@version [extra ldflags]
  log "installing $1 ($2)"
  GOBIN="$out" go install -trimpath -ldflags "-s -w ${3:-}" "$2"
}

if needs etcd; then build_etcd; fi
if needs kwok; then install_tool kwok "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"; fi
# helm's source only knows its minor version (v3.21); the patch version comes from ldflags.
if needs helm; then
  install_tool helm "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}" \
    "-X helm.sh/helm/v3/internal/version.version=${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"
fi
k8s_cmds=()
for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  if needs "$cmd"; then k8s_cmds+=("$cmd"); fi
done
if ((${#k8s_cmds[@]})); then build_kubernetes_commands "$work" "$out" "${k8s_cmds[@]}"; fi

finish_build_cache "control plane binaries" "${BINARIES[@]}"
