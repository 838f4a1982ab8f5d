#!/usr/bin/env bash
# Debian's tools for building the images without Docker (hack/build-images.sh) and for running
# them without a cluster (hack/check-images.sh): mmdebstrap makes the base root filesystem,
# umoci assembles the OCI image, runc runs an unpacked image the way a node's runtime would.
# Installed with apt-get when missing; nothing is done when they are all there.
#
#   hack/install-image-tools.sh            (as root)
#   hack/install-image-tools.sh --check    (only says what is missing; exit 1 if anything is)
set -euo pipefail
# chroot, unshare and friends live in sbin, which a user's PATH may lack
PATH="$PATH:/usr/sbin:/sbin"

# command -> the Debian package that provides it
declare -A PACKAGE=(
  [mmdebstrap]=mmdebstrap
  [umoci]=umoci
  [runc]=runc
  [unshare]=util-linux
  [chroot]=coreutils
  [tar]=tar
  [sha256sum]=coreutils
  [flock]=util-linux
)

missing=()
for cmd in "${!PACKAGE[@]}"; do
  command -v "$cmd" >/dev/null || missing+=("${PACKAGE[$cmd]}")
done
if ((${#missing[@]} == 0)); then exit 0; fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)

if [[ "${1:-}" == --check ]]; then
  echo "image tools missing: ${missing[*]} (run 'hack/install-image-tools.sh' as root)" >&2
  exit 1
fi
if [[ "$(id -u)" != 0 ]]; then
  echo "image tools missing (${missing[*]}): run 'hack/install-image-tools.sh' as root (apt-get)" >&2
  exit 1
fi
command -v apt-get >/dev/null || { echo "image tools missing (${missing[*]}) and no apt-get: a Debian host is needed" >&2; exit 1; }

echo "installing Debian's ${missing[*]} (daemonless image build)"
DEBIAN_FRONTEND=noninteractive apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
  { echo "apt-get install ${missing[*]} failed" >&2; exit 1; }
mmdebstrap --version
umoci --version
runc --version | head -1
