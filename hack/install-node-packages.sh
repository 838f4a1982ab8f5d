#!/usr/bin/env bash
# Installs the Debian packages a real node of the test cluster needs, when they are missing:
#
#   containerd                     the container runtime (1.6 on bookworm; its CRI plugin is what
#                                  the kubelet talks to), with containerd-shim-runc-v2 and ctr
#   runc                           the OCI runtime containerd's shim runs (1.1 on bookworm)
#   containernetworking-plugins    the CNI plugins (bridge, host-local, loopback) in /usr/lib/cni
#   umoci                          packs the sandbox (pause) image and the chart's images as OCI layouts
#   mmdebstrap                     builds the chart's images' Debian root filesystem (hack/build-images.sh)
#   gcc, libc6-dev                 compile the sandbox (pause) binary statically
#
# Run as root (apt-get), like `make prometheus`. A policy-rc.d that exits 101 keeps Debian's
# maintainer scripts from starting containerd as a system service: the test cluster starts its
# own containerd, with its own configuration, socket and state, inside a network namespace.
#
# Usage: bash hack/install-node-packages.sh   (prints the installed versions)
set -euo pipefail

log() { printf '[install-node-packages] %s\n' "$*" >&2; }

# command -> package that provides it
declare -A PROVIDES=(
  [containerd]=containerd
  [containerd-shim-runc-v2]=containerd
  [ctr]=containerd
  [runc]=runc
  [umoci]=umoci
  [mmdebstrap]=mmdebstrap
  [gcc]=gcc
)
CNI_DIR=/usr/lib/cni
CNI_PLUGINS=(bridge host-local loopback)

missing=()
for command in "${!PROVIDES[@]}"; do
  command -v "$command" >/dev/null || missing+=("${PROVIDES[$command]}")
done
# the static libc pause links against
[[ -e "/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)/libc.a" ]] || missing+=(libc6-dev)
for plugin in "${CNI_PLUGINS[@]}"; do
  [[ -x "$CNI_DIR/$plugin" ]] || missing+=(containernetworking-plugins)
done

if ((${#missing[@]})); then
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  if [[ "$(id -u)" != 0 ]]; then
    log "missing: ${missing[*]}: run 'bash hack/install-node-packages.sh' as root (apt-get)"
    exit 1
  fi
  log "installing Debian's ${missing[*]}"
  ours=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    ours=1
  fi
  rc=0
  DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || rc=$?
  if [[ -n "$ours" ]]; then rm -f /usr/sbin/policy-rc.d; fi
  if ((rc)); then
    log "apt-get install ${missing[*]} failed"
    exit "$rc"
  fi
fi

containerd --version
runc --version | head -n1
printf 'cni plugins %s\n' "$(dpkg-query -W -f='${Version}' containernetworking-plugins 2>/dev/null || echo '?')"
umoci --version
mmdebstrap --version
