#!/usr/bin/env bash
# Builds the chart's two images without Docker or a registry, as OCI archives that containerd
# imports (`ctr -n k8s.io images import <archive>`), tagged as `make images` tags them:
# ghcr.io/optikube/operator:<version> and ghcr.io/optikube/trainer:<version> (pyproject.toml).
#
#   hack/build-images.sh [operator|trainer|all] [--out DIR]       (as root: mounts and chroot)
#
# Each image has three layers, each built once and cached:
#   1. base OS: Debian bookworm from mmdebstrap (its Essential packages and BASE_PACKAGES below:
#      python3, python3-venv, ca-certificates, tini, ...; the trainer's also g++ and python3-dev,
#      for torch.compile);
#   2. dependencies: the image's user, /opt/venv and the project's PyPI dependencies;
#   3. project: the optikube wheel (`uv build --wheel`), installed with --no-deps.
# A code change rebuilds layer 3 only (seconds); layer 2 is keyed by pyproject's dependency
# pins, layer 1 by its package list, both also by RECIPE below. An archive whose inputs did not
# change at all (the wheel's files, the Dockerfile's config, the commit time) is kept as it is.
#
# Why Debian's python3 (3.11) and not the Dockerfiles' bases (python:3.12-slim-bookworm,
# nvidia/cuda): those are registry images, and this build has no registry; Debian's archive is
# what it has. 3.11 is the project's lowest supported Python (requires-python >= 3.11).
#
# The images' entrypoint, cmd, env, user, workdir and exposed ports are read from
# operator/Dockerfile and trainer_image/Dockerfile (their final stage), so the two builds agree.
#
# Trainer and CUDA: PyPI's Linux torch wheel is the CUDA build, and its libraries (libtorch_cpu.so
# too) are linked against CUDA's, so `import torch` needs the nvidia-* wheels even on a CPU. The
# default (CPU) trainer image installs only those that torch's libraries link against and leaves
# out what only a GPU loads (hack/images/trainer-cpu-excludes.txt, about 1 GB);
# OPTIKUBE_TRAINER_CUDA=1 installs every dependency, as the Dockerfile does, for GPU nodes.
#
# Environment:
#   OPTIKUBE_IMAGES_CACHE   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/optikube/images)
#   OPTIKUBE_IMAGES_OUT     where the archives go (default: <cache>/out; --out DIR wins)
#   OPTIKUBE_TRAINER_CUDA   1: the trainer with all of torch's CUDA wheels (GPU nodes)
#   OPTIKUBE_DEBIAN_MIRROR  mmdebstrap's MIRROR arguments, space-separated (default: its own)
#   UV                      the uv binary (default: the project's .venv/bin/uv, then uv on PATH)
#   SOURCE_DATE_EPOCH       the images' creation time (default: the time of the last commit that
#                           changed what goes into them)
#
# Writes <image>-<version>.oci.tar (trainer-<version>-cuda.oci.tar with OPTIKUBE_TRAINER_CUDA=1)
# and prints their paths last; beside each: .requirements.txt (every Python package in it, `uv pip
# freeze`) and .dpkg.txt (its Debian packages).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

# Bump when the way a layer is built changes: cached base and dependency layers are then rebuilt.
RECIPE=2
SUITE=bookworm
# netbase (/etc/hosts, /etc/services, /etc/protocols) and tzdata as in the python:*-slim images
BASE_PACKAGES=(python3 python3-venv ca-certificates netbase tzdata libstdc++6 passwd tini)
# The trainer's `compiled` runtime (torch.compile) has inductor write C++ and build it with g++
# against Python's headers; without them it fails with InvalidCxxCompiler. The operator needs
# neither, so the two images have two bases.
TRAINER_PACKAGES=(g++ python3-dev)
NICE=(nice -n 10)

log() { printf '[build-images %4ss] %s\n' "$SECONDS" "$*" >&2; }
die() { log "error: $*"; exit 1; }

# shellcheck source=lib/image-args.sh
source "$here/lib/image-args.sh"
parse_image_targets "$@"

[[ "$(id -u)" == 0 ]] || die "run as root: the build mounts overlays and chroots into them (no daemon is used)"
bash "$here/install-image-tools.sh"

mkdir -p "$cache/tmp" "$out"
cache="$(cd "$cache" && pwd)"
out="$(cd "$out" && pwd)"

uv="${UV:-}"
if [[ -z "$uv" ]]; then
  if [[ -x "$root/.venv/bin/uv" ]]; then uv="$root/.venv/bin/uv"; else uv="$(command -v uv || true)"; fi
fi
[[ -n "$uv" && -x "$uv" ]] || die "uv is needed (make setup puts it in .venv; or set UV=/path/to/uv)"
uv_cache="$("$uv" cache dir)"
mkdir -p "$uv_cache"
host_ca="${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}"
[[ -f "$host_ca" ]] || die "no CA bundle for PyPI at $host_ca (set SSL_CERT_FILE)"
py="${PYTHON:-$root/.venv/bin/python}"
[[ -x "$py" ]] || py="$(command -v python3 || true)"
[[ -n "$py" ]] && "$py" -c 'import tomllib' 2>/dev/null || die "a Python >= 3.11 is needed to read pyproject.toml (set PYTHON)"

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -1)"
[[ -n "$version" ]] || die "no version in pyproject.toml"
# the last commit of what goes into the images, not of the whole tree: a commit elsewhere must not
# make new images (each one a new import into every node's runtime)
image_inputs=(pyproject.toml README.md crds operator/src trainer_image/src operator/Dockerfile trainer_image/Dockerfile hack/build-images.sh hack/images)
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct -- "${image_inputs[@]}" 2>/dev/null || date +%s)}"
[[ -n "$epoch" ]] || epoch="$(date +%s)"
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"

work="$(mktemp -d "$cache/tmp/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

hash_of() { sha256sum | cut -c1-16; }

# True when a cache directory was finished by this recipe.
complete() { [[ "$(cat "$1/.complete" 2>/dev/null)" == "recipe=$RECIPE" ]]; }

# Holds an exclusive lock on a cache entry while it is built: two builds of the same key (two
# terminals, a test run) must not interleave. The lock goes with the process.
lock() { # dir
  exec {lock_fd}>"$1.lock"
  flock "$lock_fd"
}
unlock() { exec {lock_fd}>&-; }

# Runs script (sh) as root in a chroot of overlay(lowers, upper): what the script writes lands in
# upper, which becomes the layer. Everything is mounted in a private mount namespace, so the
# mounts disappear with it even when the build is interrupted. In the chroot: /tmp is a tmpfs
# holding uv (/tmp/uv), uv's cache (/tmp/uv-cache) and the build files (/tmp/build: build_dir of the
# caller); the host's resolv.conf is mounted over the image's empty one, for PyPI.
in_rootfs() { # upper lowers build_dir script [args...]
  local upper="$1" lowers="$2" build="$3" script="$4"
  shift 4
  local scratch
  scratch="$(mktemp -d "$work/overlay.XXXXXX")"
  mkdir -p "$upper" "$scratch/work" "$scratch/merged"
  chmod 755 "$upper"
  "${NICE[@]}" unshare --mount --propagation private -- bash -euo pipefail -c '
    upper=$1 lowers=$2 scratch=$3 uv=$4 uv_cache=$5 build=$6 host_ca=$7 script=$8
    shift 8
    m=$scratch/merged
    # index, redirect_dir and metacopy off: every change is a whole file or directory in upper,
    # which a tar of upper represents exactly
    mount -t overlay overlay -o "lowerdir=$lowers,upperdir=$upper,workdir=$scratch/work,index=off,redirect_dir=off,metacopy=off" "$m"
    mount -t proc proc "$m/proc"
    mount --rbind /dev "$m/dev"
    mount -t tmpfs -o mode=1777 tmpfs "$m/tmp"
    mkdir "$m/tmp/build" "$m/tmp/uv-cache"
    mount --bind "$build" "$m/tmp/build"
    mount --bind "$uv_cache" "$m/tmp/uv-cache"
    cp "$uv" "$m/tmp/uv"
    mount --bind /etc/resolv.conf "$m/etc/resolv.conf"
    # uv trusts what the host trusts (a proxy'"'"'s CA, say); the image keeps Debian'"'"'s certificates
    cp "$host_ca" "$m/tmp/host-ca.pem"
    exec chroot "$m" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp LANG=C.UTF-8 \
      SSL_CERT_FILE=/tmp/host-ca.pem UV_CACHE_DIR=/tmp/uv-cache UV_NO_PROGRESS=1 UV_PYTHON_DOWNLOADS=never PYTHONDONTWRITEBYTECODE=1 \
      /bin/sh -eu -c "$script" sh "$@"
  ' in-rootfs "$upper" "$lowers" "$scratch" "$uv" "$uv_cache" "$build" "$host_ca" "$script" "$@"
  rm -rf "$scratch"
  # A deletion or an opaque directory would need an OCI whiteout, which a plain tar of upper
  # does not write: no step here deletes from a lower layer, and this keeps it so.
  local odd
  odd="$(find "$upper" -type c -print -quit)"
  [[ -z "$odd" ]] || die "a layer step deleted ${odd#"$upper"} from a lower layer (overlay whiteout)"
  odd="$("$py" - "$upper" <<'PY'
import os, sys
for top, dirs, _ in os.walk(sys.argv[1]):
    for d in dirs:
        p = os.path.join(top, d)
        if any(a.startswith("trusted.overlay.") and a != "trusted.overlay.origin" and a != "trusted.overlay.impure"
               for a in os.listxattr(p, follow_symlinks=False)):
            print(p)
            raise SystemExit
PY
)"
  [[ -z "$odd" ]] || die "a layer step replaced the directory ${odd#"$upper"} of a lower layer (opaque overlay dir)"
}

# An uncompressed layer tar of a directory. Modification times are kept: Python's .pyc files are
# checked against their sources' mtimes, so rewriting them would make every .pyc stale.
layer_tar() { # dir tar
  "${NICE[@]}" tar --create --file "$2" --directory "$1" --numeric-owner --sort=name \
    --pax-option=delete=atime,delete=ctime .
}

# --- layer 1: the base OS ------------------------------------------------------------------------
# Docs, man pages and translations are not installed (copyright files are); /etc/resolv.conf and
# /etc/hostname are empty, since the runtime mounts its own over them; /dev is empty, since the
# runtime mounts one; apt's lists and caches are not kept (the image has no apt).
read -r -a mirror <<<"${OPTIKUBE_DEBIAN_MIRROR:-}"

base_for() { # packages...: sets mm_args, base_packages, base_key and base
  base_packages=("$@")
  mm_args=(
    --variant=essential
    "--include=$(IFS=,; echo "${base_packages[*]}")"
    --dpkgopt='path-exclude=/usr/share/man/*'
    --dpkgopt='path-exclude=/usr/share/locale/*'
    --dpkgopt='path-exclude=/usr/share/info/*'
    --dpkgopt='path-exclude=/usr/share/doc/*'
    --dpkgopt='path-include=/usr/share/doc/*/copyright'
  )
  base_key="$(printf '%s\n' "recipe=$RECIPE" "$SUITE" "${mm_args[@]}" "${mirror[@]}" | hash_of)"
  base="$cache/base/$SUITE-$base_key"
}

build_base() {
  if complete "$base"; then log "base OS layer cached ($SUITE-$base_key)"; return; fi
  mkdir -p "$cache/base"
  lock "$base"
  if ! complete "$base"; then
    log "building the base OS layer: Debian $SUITE with ${base_packages[*]} (mmdebstrap)"
    rm -rf "$base"
    mkdir -p "$base"
    "${NICE[@]}" mmdebstrap --quiet "${mm_args[@]}" "$SUITE" "$base/rootfs" "${mirror[@]}" </dev/null
    # after mmdebstrap, not in its hooks: it mounts /dev and owns /etc/apt while they run
    (
      cd "$base/rootfs"
      find dev var/cache/apt var/lib/apt/lists -mindepth 1 -delete
      rm -rf var/log/apt etc/apt
      : >etc/resolv.conf
      : >etc/hostname
    )
    chroot "$base/rootfs" dpkg-query -W -f '${Package}\t${Version}\n' >"$base/dpkg.txt"
    layer_tar "$base/rootfs" "$work/base.tar"
    umoci init --layout "$base/oci"
    umoci new --image "$base/oci:base"
    "${NICE[@]}" umoci raw add-layer --image "$base/oci:base" --history.created "$created" \
      --history.created_by "mmdebstrap --variant=essential $SUITE: ${base_packages[*]}" "$work/base.tar"
    rm -f "$work/base.tar"
    echo "recipe=$RECIPE" >"$base/.complete"
  fi
  unlock
}

# --- layer 2: the dependencies -------------------------------------------------------------------
# Per image: its user (as its Dockerfile's useradd), the venv and the project's PyPI dependencies
# (not the project itself: `uv pip install -r pyproject.toml`), compiled to .pyc as pip does, since
# a read-only root filesystem cannot cache them at run time. No source distribution is built.
deps_script='
python3 -m venv /opt/venv
useradd $USERADD
[ -z "$MKDIR" ] || mkdir -p $MKDIR
/tmp/uv pip install --python /opt/venv/bin/python --no-build --compile-bytecode --link-mode copy \
  -r /tmp/build/pyproject.toml $EXTRAS $EXCLUDES
/tmp/uv pip freeze --python /opt/venv/bin/python >/tmp/build/requirements.txt
/tmp/uv pip check --python /opt/venv/bin/python >/tmp/build/check.txt 2>&1 || true
'

image_settings() { # image: sets dockerfile useradd mkdirs extras excludes base_env variant, the base
  variant=""
  case "$1" in
    operator)
      base_for "${BASE_PACKAGES[@]}"
      dockerfile="$root/operator/Dockerfile"
      useradd="--uid 1000 --user-group --no-create-home --home-dir /tmp optikube"
      mkdirs=""
      extras=()
      excludes=""
      base_env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "LANG=C.UTF-8")
      ;;
    trainer)
      base_for "${BASE_PACKAGES[@]}" "${TRAINER_PACKAGES[@]}"
      dockerfile="$root/trainer_image/Dockerfile"
      useradd="--uid 1000 --create-home optikube"
      mkdirs="/workspace"
      extras=(trainer hf)
      base_env=("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" "LANG=C.UTF-8")
      if [[ "${OPTIKUBE_TRAINER_CUDA:-}" == 1 ]]; then
        excludes=""
        # same tag (the chart's default), another file name: it never silently replaces the CPU one
        variant="-cuda"
        # what nvidia/cuda sets for the NVIDIA container runtime (the device plugin sets which GPUs)
        base_env+=("NVIDIA_DRIVER_CAPABILITIES=compute,utility")
      else
        excludes="$here/images/trainer-cpu-excludes.txt"
      fi
      ;;
  esac
  # the two lines of the Dockerfile that this build mirrors by hand
  grep -q "useradd $useradd" "$dockerfile" || die "$dockerfile no longer runs 'useradd $useradd': update image_settings"
}

# The pins that decide layer 2: requires-python, the dependencies and the image's extras.
dependency_pins() { # extras...
  "$py" - "$root/pyproject.toml" "$@" <<'PY'
import json, sys, tomllib
project = tomllib.load(open(sys.argv[1], "rb"))["project"]
extras = project.get("optional-dependencies", {})
print(json.dumps({
    "requires-python": project.get("requires-python"),
    "dependencies": project.get("dependencies", []),
    **{extra: extras[extra] for extra in sys.argv[2:]},
}, sort_keys=True))
PY
}

build_deps() { # image: sets deps
  local image="$1"
  local key
  key="$(
    printf '%s\n' "recipe=$RECIPE" "base=$base_key" "$image" "$useradd" "$mkdirs" "$deps_script" "${extras[@]}"
    dependency_pins "${extras[@]}"
    [[ -z "$excludes" ]] || cat "$excludes"
  )"
  key="$(hash_of <<<"$key")"
  deps="$cache/deps/$image-$key"
  if complete "$deps"; then log "$image: dependency layer cached ($image-$key)"; return; fi
  mkdir -p "$cache/deps"
  lock "$deps"
  if ! complete "$deps"; then
    log "$image: building the dependency layer (extras: ${extras[*]:-none}${excludes:+, CPU: without $(grep -cv '^\s*\(#\|$\)' "$excludes") GPU-only packages})"
    rm -rf "$deps"
    mkdir -p "$deps"
    local build="$work/deps-$image"
    mkdir -p "$build"
    cp "$root/pyproject.toml" "$build/pyproject.toml"
    local extra_args="" exclude_args=""
    for extra in "${extras[@]}"; do extra_args+=" --extra $extra"; done
    if [[ -n "$excludes" ]]; then
      cp "$excludes" "$build/excludes.txt"
      exclude_args="--excludes /tmp/build/excludes.txt"
    fi
    in_rootfs "$deps/upper" "$base/rootfs" "$build" \
      "USERADD='$useradd' MKDIR='$mkdirs' EXTRAS='$extra_args' EXCLUDES='$exclude_args'; $deps_script"
    cp "$build/requirements.txt" "$deps/requirements.txt"
    check_deps "$image" "$build/check.txt"
    cp -a --reflink=auto "$base/oci" "$deps/oci.partial"
    layer_tar "$deps/upper" "$work/deps.tar"
    log "$image: compressing the dependency layer ($(du -sh --apparent-size "$work/deps.tar" | cut -f1))"
    "${NICE[@]}" umoci raw add-layer --image "$deps/oci.partial:base" --tag deps --history.created "$created" \
      --history.created_by "/opt/venv: the dependencies of optikube${extras[*]:+[$(IFS=,; echo "${extras[*]}")]} (uv pip install -r pyproject.toml)" \
      "$work/deps.tar"
    rm -f "$work/deps.tar"
    umoci rm --image "$deps/oci.partial:base"
    mv "$deps/oci.partial" "$deps/oci"
    echo "recipe=$RECIPE" >"$deps/.complete"
  fi
  unlock
}

# What the dependency layer must (not) hold; run before it is cached.
check_deps() { # image check.txt
  local image="$1" problems
  case "$image" in
    operator)
      # as the Dockerfile checks it: the operator never gets torch
      [[ ! -e "$deps/upper/opt/venv/lib/python3.11/site-packages/torch" ]] || die "operator: torch is in the dependency layer"
      grep -qi 'compatible' "$2" || die "operator: uv pip check: $(cat "$2")"
      ;;
    trainer)
      if [[ -n "$excludes" ]]; then
        # the only unmet requirements are the packages left out on purpose
        local left_out
        left_out="$(grep -v '^\s*\(#\|$\)' "$excludes" | paste -sd'|')"
        problems="$(grep -i 'requires' "$2" | grep -v -i -E "requires \`($left_out)[^a-z0-9_.-]" || true)"
        [[ -z "$problems" ]] || die "trainer: uv pip check: $problems"
      else
        grep -qi 'compatible' "$2" || die "trainer: uv pip check: $(cat "$2")"
      fi
      ;;
  esac
}

# --- layer 3: the project ------------------------------------------------------------------------
build_wheel() {
  log "building the optikube wheel"
  "${NICE[@]}" "$uv" build --quiet --wheel --out-dir "$work/wheel" "$root" >&2
  wheel="$(echo "$work"/wheel/optikube-*.whl)"
  [[ -f "$wheel" ]] || die "uv build made no wheel"
}

# The final stage of a Dockerfile as umoci config flags (NUL-separated): ENV (with $VAR expanded
# from base_env and earlier ENVs), USER, WORKDIR, EXPOSE, ENTRYPOINT and CMD (JSON form).
dockerfile_config() { # dockerfile base_env...
  "$py" - "$@" <<'PY'
import json, re, shlex, sys

path, base_env = sys.argv[1], sys.argv[2:]
lines, current = [], ""
for raw in open(path):
    line = raw.rstrip("\n")
    if not current and (not line.strip() or line.lstrip().startswith("#")):
        continue
    if line.endswith("\\"):
        current += line[:-1] + " "
        continue
    lines.append(current + line)
    current = ""
stage = [l.strip() for l in lines]
last_from = max(i for i, l in enumerate(stage) if l.upper().startswith("FROM "))
stage = stage[last_from + 1:]

env = dict(e.split("=", 1) for e in base_env)
order = list(env)
user = workdir = entrypoint = cmd = None
ports = []
expand = lambda v: re.sub(r"\$\{?(\w+)\}?", lambda m: env.get(m.group(1), ""), v)
for l in stage:
    op, _, rest = l.partition(" ")
    op = op.upper()
    if op == "ENV":
        # as Docker does: $VAR means the value from before this instruction
        before = dict(env)
        for item in shlex.split(rest):
            key, value = item.split("=", 1)
            env[key] = re.sub(r"\$\{?(\w+)\}?", lambda m: before.get(m.group(1), ""), value)
            if key not in order:
                order.append(key)
    elif op == "USER":
        user = rest.strip()
    elif op == "WORKDIR":
        workdir = expand(rest.strip())
    elif op == "EXPOSE":
        ports += [p if "/" in p else p + "/tcp" for p in rest.split()]
    elif op in ("ENTRYPOINT", "CMD"):
        value = json.loads(rest)
        assert isinstance(value, list), f"{op} must use the JSON form"
        entrypoint, cmd = (value, cmd) if op == "ENTRYPOINT" else (entrypoint, value)
flags = [f"--config.env={k}={env[k]}" for k in order]
flags += [f"--config.user={user}"] if user else []
flags += [f"--config.workingdir={workdir}"] if workdir else []
flags += [f"--config.exposedports={p}" for p in ports]
flags += [f"--config.entrypoint={a}" for a in entrypoint or []]
flags += [f"--config.cmd={a}" for a in cmd or []]
sys.stdout.write("\0".join(flags) + "\0")
PY
}

project_script='
/tmp/uv pip install --python /opt/venv/bin/python --no-deps --offline --compile-bytecode --link-mode copy \
  /tmp/build/"$WHEEL"
'

# What decides an archive's bytes besides its cached layers: the wheel's files (its RECORD holds
# the hash of each), the image config read from the Dockerfile, the version and the creation time.
project_key() { # image
  {
    printf '%s\n' "recipe=$RECIPE" "deps=$deps" "$version$variant" "$created"
    "$py" -c 'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))).decode())' "$wheel"
    dockerfile_config "$dockerfile" "${base_env[@]}" | tr '\0' '\n'
  } | hash_of
}

build_image() { # image
  local image="$1"
  image_settings "$image"
  build_base
  build_deps "$image"
  local ref="ghcr.io/optikube/$image:$version"
  local archive="$out/$image-$version$variant.oci.tar" key
  key="$(project_key "$image")"
  # an unchanged tree gives the same archive: nothing to build, import or test again
  if [[ -f "$archive" && "$(cat "$archive.key" 2>/dev/null)" == "$key" ]]; then
    log "$image: $(basename "$archive") is up to date"
    archives+=("$archive")
    return
  fi
  log "$image: installing the wheel (project layer)"
  local build="$work/project-$image" upper="$work/project-$image-upper"
  mkdir -p "$build"
  cp "$wheel" "$build/"
  in_rootfs "$upper" "$deps/upper:$base/rootfs" "$build" "WHEEL='$(basename "$wheel")'; $project_script"
  # test tooling (optikube_testcluster, once optikube_operator.envtest) never ships in an image
  local leaked
  leaked="$(find "$upper" "$deps/upper" \( -name envtest -o -name 'optikube_testcluster*' \) -print -quit)"
  [[ -z "$leaked" ]] || die "$image: test tooling in the image: $leaked"
  smoke_test "$image" "$upper"

  local layout="$work/oci-$image"
  # the cached layout's blobs are shared by hard links; its index is the only file umoci rewrites
  cp -al "$deps/oci" "$layout"
  rm "$layout/index.json"
  cp "$deps/oci/index.json" "$layout/index.json"
  layer_tar "$upper" "$work/project.tar"
  umoci raw add-layer --image "$layout:deps" --tag project --history.created "$created" \
    --history.created_by "optikube $version ($(basename "$wheel"), uv pip install --no-deps)" "$work/project.tar"
  local config
  mapfile -d '' config < <(dockerfile_config "$dockerfile" "${base_env[@]}")
  umoci config --image "$layout:project" --tag "$ref" "${config[@]}" \
    --config.label "org.opencontainers.image.title=optikube-$image" \
    --config.label "org.opencontainers.image.version=$version" \
    --created "$created" --history.created "$created" --history.created_by "config from ${dockerfile#"$root"/}"
  umoci rm --image "$layout:deps"
  umoci rm --image "$layout:project"
  umoci gc --layout "$layout"

  log "$image: writing $(basename "$archive")"
  "${NICE[@]}" tar --create --file "$archive.partial" --directory "$layout" --numeric-owner --sort=name \
    oci-layout index.json blobs
  mv "$archive.partial" "$archive"
  echo "$key" >"$archive.key"
  cp "$deps/requirements.txt" "$out/$image-$version$variant.requirements.txt"
  cp "$base/dpkg.txt" "$out/$image-$version$variant.dpkg.txt"
  rm -rf "$layout" "$upper" "$work/project.tar"
  archives+=("$archive")
}

# Runs the installed entry points once, as root in the build chroot (hack/check-images.sh runs the
# finished images as uid 1000 with a read-only root). Writes nothing: PYTHONDONTWRITEBYTECODE and
# HOME=/tmp (a tmpfs) are set in the chroot, and the overlay's upper is kept apart. Every line must
# succeed (set -e): a trainer whose modules no longer import together is not shipped.
smoke_test() { # image project-upper
  local image="$1" check="$work/smoke-$image-upper" script
  case "$image" in
    operator)
      script='set -e
/opt/venv/bin/python -m optikube_operator --help >/dev/null
! /opt/venv/bin/python -c "import torch" 2>/dev/null' ;;
    trainer)
      script='set -e
/opt/venv/bin/python -c "import torch, torchvision, torchao, onnxruntime; assert float(torch.ones(2) @ torch.ones(2)) == 2.0"
/opt/venv/bin/python -m optikube_trainer --help >/dev/null
# what inductor needs to build its C++: a compiler and Python.h
printf "#include <Python.h>\\nint main() { return 0; }\\n" | g++ -x c++ $(python3-config --includes) -o /tmp/cxx-check - && /tmp/cxx-check' ;;
  esac
  in_rootfs "$check" "$2:$deps/upper:$base/rootfs" "$work" "$script" || die "$image: smoke test failed"
  rm -rf "$check"
}

build_wheel
archives=()
for target in "${targets[@]}"; do
  build_image "$target"
done
log "done; import on a node with: ctr -n k8s.io images import <archive>"
printf '%s\n' "${archives[@]}"
