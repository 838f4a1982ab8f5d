# shellcheck shell=bash
# Builds commands of k8s.io/kubernetes (cmd/kube-apiserver, cmd/kubelet, ...) at KUBERNETES_VERSION
# from the published module, for hack/build-controlplane.sh and hack/build-node.sh (sourced by both,
# so that the two builds make the same module graph and share Go's build cache).
#
#   build_kubernetes_commands <work dir> <out dir> <cmd>...
#
# A wrapper go.mod requires k8s.io/kubernetes and replaces every k8s.io/* staging module (which
# k8s.io/kubernetes points at ./staging/..., invisible to a module that requires it) with its
# published v0.X.Y tag. The version variables are set by ldflags: without them --version prints
# v0.0.0-master and clients' version checks misbehave.
build_kubernetes_commands() {
  local work="$1" out="$2"
  shift 2
  local minor="${KUBERNETES_VERSION#v1.}"
  minor="${minor%%.*}"
  local staging_version="v0.${KUBERNETES_VERSION#v1.}"
  local mod="$work/kubernetes"
  mkdir -p "$mod"
  (
    cd "$mod"
    go mod init optikube.io/kubernetes >/dev/null 2>&1
    go mod download -json "k8s.io/kubernetes@${KUBERNETES_VERSION}" >"$work/k8s.json"
    local gomod
    gomod="$(sed -n 's/.*"GoMod": "\(.*\)",/\1/p' "$work/k8s.json")"
    {
      echo "require k8s.io/kubernetes ${KUBERNETES_VERSION}"
      echo "replace ("
      grep -E '^\s+k8s.io/[a-z0-9-]+ => ./staging/' "$gomod" | awk -v v="$staging_version" '{print "\t" $1 " => " $1 " " v}' |
        grep -v -E 'sample-(apiserver|cli-plugin|controller)'
      echo ")"
    } >>go.mod
    {
      printf '//go:build tools\n\npackage tools\n\nimport (\n'
      local cmd
      for cmd in "$@"; do printf '\t_ "k8s.io/kubernetes/cmd/%s"\n' "$cmd"; done
      printf ')\n'
    } >tools.go
    go mod tidy -e >/dev/null 2>&1 || true
    local pkg=k8s.io/component-base/version
    local ldflags="-s -w -X ${pkg}.gitVersion=${KUBERNETES_VERSION} -X ${pkg}.gitMajor=1 -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"
    ldflags+=" -X k8s.io/client-go/pkg/version.gitVersion=${KUBERNETES_VERSION} -X k8s.io/client-go/pkg/version.gitMajor=1 -X k8s.io/client-go/pkg/version.gitMinor=${minor}"
    for cmd in "$@"; do
      log "building $cmd ${KUBERNETES_VERSION}"
      go build -tags tools -trimpath -ldflags "$ldflags" -o "$out/$cmd" "k8s.io/kubernetes/cmd/$cmd"
    done
  )
}
