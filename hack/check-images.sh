#!/usr/bin/env bash
# Runs the archives of hack/build-images.sh the way the chart and the operator run them, without a
# cluster: each image is unpacked (umoci) and started with runc as uid 1000 from the image config,
# on a read-only root filesystem, with no capabilities, no new privileges, /tmp an empty tmpfs
# (the pods' emptyDir) and an /etc/hosts like the kubelet's. Host networking stands in for the
# pod's network (runc brings up no loopback in a new network namespace); seccomp is left to the
# node's runtime.
#
#   hack/check-images.sh [operator|trainer|all] [--out DIR]       (as root)
#   (OPTIKUBE_TRAINER_CUDA=1: the trainer-<version>-cuda archive)
#
# operator: `python -m optikube_operator --help` through the image's entrypoint; no torch, no test
#   tooling in the file list; no stale .pyc (a read-only root cannot refresh them).
# trainer: `torchrun --nproc-per-node=1 -m optikube_trainer --help` through the entrypoint (tini);
#   torch, torchvision, torchao and onnxruntime import and torch computes; then one real trial of
#   the builtin digits data, started by the operator's own launch script (the image's
#   optikube_operator.kube.resources.LAUNCH_SCRIPT) with the pod's environment.
# Then the sizes: archive, unpacked root filesystem, and what takes the space.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"

log() { printf '[check-images] %s\n' "$*" >&2; }
die() { log "FAIL: $*"; exit 1; }

# shellcheck source=lib/image-args.sh
source "$here/lib/image-args.sh"
parse_image_targets "$@"
[[ "$(id -u)" == 0 ]] || die "run as root (umoci unpack keeps the image's owners; runc)"
bash "$here/install-image-tools.sh"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/pyproject.toml" | head -1)"
py="${PYTHON:-$root/.venv/bin/python}"
[[ -x "$py" ]] || py="$(command -v python3)"

mkdir -p "$cache/tmp"
work="$(mktemp -d "$cache/tmp/check.XXXXXX")"
containers=()
export CHECK_HOSTS="$work/hosts"
printf '# Kubernetes-managed hosts file.\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.0.1\tcheck\n' >"$CHECK_HOSTS"
cleanup() {
  for id in "${containers[@]}"; do runc delete --force "$id" >/dev/null 2>&1 || true; done
  rm -rf "$work"
}
trap cleanup EXIT

# Writes bundle/config.json for one run: the image's user, env, cwd and (unless args are given)
# entrypoint + cmd, hardened as the pods are. Extra mounts: "tmpfs:/dst", "/src:/dst" (read-only)
# or "rw:/src:/dst".
runtime_config() { # bundle args_json env_json mounts...
  "$py" - "$@" <<'PY'
import json, os, sys
bundle, args, env, *mounts = sys.argv[1:]
path = f"{bundle}/config.json"
spec = json.load(open(path))
proc = spec["process"]
proc["terminal"] = False
if json.loads(args):
    proc["args"] = json.loads(args)
extra = json.loads(env)
proc["env"] = [e for e in proc["env"] if e.split("=", 1)[0] not in extra] + [f"{k}={v}" for k, v in extra.items()]
proc["noNewPrivileges"] = True
proc["capabilities"] = {k: [] for k in ("bounding", "effective", "inheritable", "permitted", "ambient")}
assert proc["user"]["uid"] == 1000, proc["user"]
spec["root"]["readonly"] = True
spec["hostname"] = "check"
spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != "network"]
spec["mounts"] = [m for m in spec["mounts"] if m["destination"] != "/tmp"]
# the kubelet's /etc/hosts names the pod's own host name, which torchrun's rendezvous resolves
spec["mounts"].append({"destination": "/etc/hosts", "type": "bind", "source": os.environ["CHECK_HOSTS"], "options": ["rbind", "ro"]})
spec["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]})
for m in mounts:
    src, dst = m.split(":", 1)
    if src == "rw":
        src, dst = dst.split(":", 1)
        spec["mounts"].append({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "rw"]})
    elif src == "tmpfs":
        spec["mounts"].append({"destination": dst, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]})
    else:
        spec["mounts"].append({"destination": dst, "type": "bind", "source": src, "options": ["rbind", "ro"]})
json.dump(spec, open(path, "w"), indent=1)
PY
}

# Runs the bundle once; its output goes to stdout; fails when the process does.
run() { # name bundle timeout
  local id="optikube-check-$1-$$"
  containers+=("$id")
  timeout "$3" runc run --bundle "$2" "$id" </dev/null
}

unpack() { # image: sets bundle rootfs archive
  local variant=""
  [[ "$1" != trainer || "${OPTIKUBE_TRAINER_CUDA:-}" != 1 ]] || variant="-cuda"
  archive="$out/$1-$version$variant.oci.tar"
  [[ -f "$archive" ]] || die "no $archive (hack/build-images.sh $1)"
  local layout="$work/$1-oci"
  mkdir -p "$layout"
  tar -xf "$archive" -C "$layout"
  local ref="ghcr.io/optikube/$1:$version"
  umoci ls --layout "$layout" | grep -qx "$ref" || die "$archive is not tagged $ref: $(umoci ls --layout "$layout")"
  bundle="$work/$1-bundle"
  log "$1: unpacking $ref"
  nice -n 10 umoci unpack --image "$layout:$ref" "$bundle" >/dev/null
  rm -rf "$layout"
  rootfs="$bundle/rootfs"
}

sizes() { # image: the archive, the unpacked root filesystem, its top directories and packages
  local site="$rootfs/opt/venv/lib/python3.11/site-packages"
  log "$1: archive $(du -h --apparent-size "$archive" | cut -f1), unpacked $(du -s --apparent-size --block-size=1M "$rootfs" | cut -f1) MB; the biggest:"
  {
    du -x --apparent-size --block-size=1M --max-depth=2 "$rootfs" | sort -rn | sed -n '2,7p'
    du --apparent-size --block-size=1M --max-depth=1 "$site" | sort -rn | sed -n '2,13p'
  } | awk -v r="$rootfs" '{sub(r, "", $2); printf "  %6d MB  %s\n", $1, $2}' >&2
}

no_stale_pyc() { # image module
  local stale
  runtime_config "$bundle" "[\"python\", \"-v\", \"-c\", \"import $2\"]" '{}'
  # python -v names the .pyc it loads, and the .py (unquoted) of what it compiles from source
  run "$1-pyc" "$bundle" 300 >"$work/verbose.txt" 2>&1 || die "$1: python -c 'import $2': $(tail -5 "$work/verbose.txt")"
  grep -q "^# code object from '.*\.pyc'" "$work/verbose.txt" || die "$1: python -v shows no .pyc loaded"
  stale="$(grep -c "^# code object from [^']" "$work/verbose.txt" || true)"
  [[ "$stale" == 0 ]] || die "$1: $stale modules compiled from source on importing $2 (stale or missing .pyc: recompiled at every start): $(grep "^# code object from [^']" "$work/verbose.txt" | head -3)"
  log "$1: importing $2 reads only up-to-date .pyc"
}

check_operator() {
  unpack operator
  local site="$rootfs/opt/venv/lib/python3.11/site-packages"
  [[ ! -e "$site/torch" ]] || die "operator: torch is in the image"
  local leaked
  leaked="$(find "$rootfs" \( -name envtest -o -name 'optikube_testcluster*' \) -print -quit)"
  [[ -z "$leaked" ]] || die "operator: test tooling in the image: ${leaked#"$rootfs"}"
  log "operator: no torch, no envtest, no optikube_testcluster in the file list"
  # the chart's command is the entrypoint plus `operator ...`; --help goes through the same path
  runtime_config "$bundle" '["python", "-m", "optikube_operator", "--help"]' '{}'
  run operator-help "$bundle" 120 >"$work/help.txt" || die "operator: python -m optikube_operator --help: $(tail -5 "$work/help.txt")"
  head -3 "$work/help.txt" | sed 's/^/  /' >&2
  runtime_config "$bundle" '["python", "-c", "import torch"]' '{}'
  if run operator-torch "$bundle" 60 >/dev/null 2>&1; then die "operator: torch imports"; fi
  no_stale_pyc operator optikube_operator.cli.main
  sizes operator
  rm -rf "$bundle"
}

check_trainer() {
  unpack trainer
  local site="$rootfs/opt/venv/lib/python3.11/site-packages"
  local leaked
  leaked="$(find "$rootfs" \( -name envtest -o -name 'optikube_testcluster*' \) -print -quit)"
  [[ -z "$leaked" ]] || die "trainer: test tooling in the image: ${leaked#"$rootfs"}"
  # the pod's environment (optikube_operator.kube.resources._env), less the downward API
  local pod_env='{"HOME": "/tmp", "XDG_CACHE_HOME": "/tmp/.cache", "MPLCONFIGDIR": "/tmp/.matplotlib", "PYTHONUNBUFFERED": "1"}'

  # the image's entrypoint (tini -- torchrun) with --help for the module instead of a stage
  runtime_config "$bundle" '["tini", "--", "torchrun", "--nproc-per-node=1", "-m", "optikube_trainer", "--help"]' "$pod_env"
  run trainer-help "$bundle" 300 >"$work/help.txt" 2>&1 || die "trainer: torchrun ... -m optikube_trainer --help: $(tail -20 "$work/help.txt")"
  grep -q 'preflight,trial,pipeline' "$work/help.txt" || die "trainer: unexpected help: $(cat "$work/help.txt")"
  head -2 "$work/help.txt" | sed 's/^/  /' >&2

  runtime_config "$bundle" '["python", "-c", "import torch, torchvision, torchao, onnxruntime; x = torch.ones(2) @ torch.ones(2); assert float(x) == 2.0; print(\"torch\", torch.__version__, \"(CUDA build\", torch.version.cuda, \") torchvision\", torchvision.__version__, \"torchao\", torchao.__version__, \"onnxruntime\", onnxruntime.__version__, \"ones(2) @ ones(2) =\", float(x), \"cuda available:\", torch.cuda.is_available())"]' "$pod_env"
  run trainer-import "$bundle" 300 >"$work/import.txt" 2>&1 || die "trainer: import: $(tail -20 "$work/import.txt")"
  tail -1 "$work/import.txt" | sed 's/^/  /' >&2
  local gpu_only
  gpu_only="$(find "$site" -maxdepth 4 \( -path "$site/triton" -o -name 'libcusolver.so*' -o -path "$site/cuda/bindings" \) -printf '%P ')"
  log "trainer: GPU-only pieces present: ${gpu_only:-none} (none in the CPU build; OPTIKUBE_TRAINER_CUDA=1 installs them)"
  log "trainer: CUDA libraries torch links against: $(find "$site/nvidia" -name 'lib*.so*' 2>/dev/null | wc -l) files, $(du -sh "$site/nvidia" 2>/dev/null | cut -f1)"

  # one real trial, launched as the operator launches trainer pods
  mkdir -p "$work/config"
  # an emptyDir is a directory of mode 0777 (a tmpfs would take the mode of runc's mount point)
  mkdir -p "$work/artifacts"
  chmod 777 "$work/artifacts"
  # the kubelet mounts a writable file there (terminationMessagePath)
  : >"$work/termination-log"
  chmod 666 "$work/termination-log"
  cat >"$work/config/run.json" <<'JSON'
{"apiVersion": "optikube.io/v1alpha1", "kind": "RunConfig", "stage": "trial",
 "job": {"name": "check", "namespace": "default", "uid": "uid-check"},
 "trial": {"number": 0, "params": {}},
 "spec": {"seed": 1, "data": {"source": {"builtin": "digits"}},
          "model": {"builtin": {"name": "mlp"}, "params": {"width": 32}},
          "objectives": [{"metric": "accuracy", "direction": "maximize"}],
          "training": {"epochs": 2, "batchSize": 64, "learningRate": 0.01}},
 "outputDir": "/artifacts", "resumeFrom": null}
JSON
  local launch_env='{"HOME": "/tmp", "XDG_CACHE_HOME": "/tmp/.cache", "MPLCONFIGDIR": "/tmp/.matplotlib", "PYTHONUNBUFFERED": "1",
    "OPTIKUBE_RUN": "check-trial-0", "OPTIKUBE_STAGE": "trial", "OPTIKUBE_CONFIG": "/etc/optikube/run.json",
    "OPTIKUBE_NNODES": "1", "OPTIKUBE_NPROC_PER_NODE": "1", "OPTIKUBE_RDZV_HOST": "localhost",
    "OPTIKUBE_RDZV_PORT": "29500", "JOB_COMPLETION_INDEX": "0", "OMP_NUM_THREADS": "1"}'
  runtime_config "$bundle" '["/bin/sh", "-c", "exec /bin/sh -c \"$(python -c \"from optikube_operator.kube.resources import LAUNCH_SCRIPT; print(LAUNCH_SCRIPT)\")\""]' \
    "$launch_env" "$work/config:/etc/optikube" "rw:$work/artifacts:/artifacts" "rw:$work/termination-log:/dev/termination-log"
  log "trainer: one trial (digits, 2 epochs) through the operator's launch script and torchrun"
  run trainer-trial "$bundle" 600 >"$work/trial.txt" 2>&1 || die "trainer: trial: $(tail -30 "$work/trial.txt")"
  grep -q '"type": *"final"' "$work/trial.txt" || die "trainer: the trial reported no final result: $(tail -30 "$work/trial.txt")"
  [[ -s "$work/artifacts/results.json" ]] || die "trainer: the trial wrote no /artifacts/results.json: $(tail -30 "$work/trial.txt")"
  "$py" -c 'import json, sys; r = json.load(open(sys.argv[1])); print("  trial results.json: epochs", r["epochsRun"], "values", json.dumps(r["values"]))' \
    "$work/artifacts/results.json" >&2
  no_stale_pyc trainer torch
  sizes trainer
  rm -rf "$bundle"
}

for target in "${targets[@]}"; do
  "check_$target"
done
log "all checks passed"
