#!/usr/bin/env bash
# Builds the real Kubernetes control plane used by the cluster test tier from Go modules:
# kube-apiserver, kube-controller-manager, kube-scheduler, kubectl, etcd, kwok and helm,
# at the versions pinned in hack/versions.env.
#
# Output: $OPTIKUBE_ASSETS_CACHE/<key>/{kube-apiserver,...}; prints that directory last.
# A finished directory carries a .complete stamp, so a second run costs nothing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache_root="${OPTIKUBE_ASSETS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/optikube/controlplane}"
key="k8s-${KUBERNETES_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_helm-${HELM_VERSION}"
out="$cache_root/$key"
if [[ -f "$out/.complete" ]]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
export CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local

log() { printf '[build-controlplane] %s\n' "$*" >&2; }

build_kubernetes() {
  local minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  local mod="$work/kubernetes"
  mkdir -p "$mod"
  (
    cd "$mod"
    go mod init optikube.io/controlplane >/dev/null 2>&1
    go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" >"$work/k8s.json"
    local gomod
    gomod="$(sed -n 's/.*"GoMod": "\(.*\)",/\1/p' "$work/k8s.json")"
    # k8s.io/kubernetes replaces its staging modules with local paths, which a module that
    # requires it cannot see; point each one at its published v0.X.Y tag instead.
    {
      echo "require k8s.io/kubernetes ${KUBERNETES_VERSION}"
      echo "replace ("
      grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}' \
        | grep -v -E 'sample-(apiserver|cli-plugin|controller)'
      echo ")"
    } >>go.mod
    cat >tools.go <<GO
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
    go mod tidy -e >/dev/null 2>&1 || true
    local pkg=k8s.io/component-base/version
    local ldflags="-s -w -X ${pkg}.gitVersion=${KUBERNETES_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=${KUBERNETES_VERSION} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
    for cmd in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
      log "building $cmd ${KUBERNETES_VERSION}"
      go build -tags tools -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done
  )
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

install_tool() { # name module@version
  log "installing $1 ($2)"
  GOBIN="$out" go install -trimpath -ldflags "-s -w" "$2"
}

build_etcd
install_tool kwok "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
install_tool helm "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}"
build_kubernetes
touch "$out/.complete"
echo "$out"
