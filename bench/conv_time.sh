#!/usr/bin/env bash
# Where a training step goes, lockstep beside its PyTorch peer, in one invocation: both run their
# convolutions on oneDNN, so each side's step is split, from oneDNN's own verbose log
# (ONEDNN_VERBOSE=1, bench/conv_time.py), into the time of oneDNN's convolution kernels and the
# rest. The implementations each side got are listed, so the two can be seen to run the same
# kernels. The last column is the most a step of lockstep could gain over the peer's while the
# convolutions take what they take: peer step ms / lockstep conv ms (nothing but convolution left).
# One thread per process, batch 128, the peer in channels_last (as lockstep); verbose logging adds
# a little to both sides alike.
# usage: bench/conv_time.sh [MODEL=fmnist-cnn] [STEPS=10] [PRECISION=fp32|bf16]   (after building)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
model=${1:-fmnist-cnn}
steps=${2:-10}
precision=${3:-fp32}
case $model in fmnist-cnn | fmnist-resnet8 | fmnist-resnet20) ;; *)
  echo "conv_time.sh: MODEL must be fmnist-cnn, fmnist-resnet8 or fmnist-resnet20 (a convolutional model), got '$model'" >&2
  exit 2 ;;
esac
case $precision in fp32 | bf16) ;; *) echo "conv_time.sh: PRECISION must be fp32 or bf16, got '$precision'" >&2; exit 2 ;; esac
case $steps in '' | *[!0-9]* | 0) echo "conv_time.sh: STEPS must be a positive whole number, got '$steps'" >&2; exit 2 ;; esac
data=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
python=${PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q avx512bw /proc/cpuinfo && grep -q avx512dq /proc/cpuinfo &&
  grep -q avx512vl /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=SkylakeX
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ONEDNN_VERBOSE=1 build/bench/train_bench "$model" "$steps" 1 "$data" "$precision" >"$tmp/lockstep.log" 2>&1
ONEDNN_VERBOSE=1 DNNL_VERBOSE=1 "$python" bench/torch_peer.py "$model" "$steps" 1 "$data" "$precision" channels_last \
  >"$tmp/peer.log" 2>&1
"$python" - "$tmp" "$model" "$precision" <<'PY'
import json, subprocess, sys
tmp, model, precision = sys.argv[1:4]
rows = {}
for side in ("lockstep", "peer"):
    log = f"{tmp}/{side}.log"
    result = None
    for line in open(log, errors="replace"):
        if line.startswith("{") and "train_samples_per_sec" in line:
            result = json.loads(line)
    if result is None:
        sys.exit(f"conv_time.sh: the {side} run printed no result; its log ends:\n" + open(log, errors="replace").read()[-2000:])
    conv = json.loads(subprocess.run([sys.executable, "bench/conv_time.py", log, "128"], check=True,
                                     capture_output=True, text=True).stdout)
    step_ms = 128e3 / result["train_samples_per_sec"]
    rows[side] = (result["train_samples_per_sec"], step_ms, conv)
print(f"{model} {precision}, batch 128, one thread; oneDNN convolution time from its verbose log (median per call)")
print(f"{'side':<9} {'train/s':>8} {'step ms':>8} {'conv ms':>8} {'other ms':>9}")
for side, (rate, step, conv) in rows.items():
    print(f"{side:<9} {rate:8.0f} {step:8.1f} {conv['conv_ms_per_step']:8.1f} {step - conv['conv_ms_per_step']:9.1f}")
ours, peer = rows["lockstep"], rows["peer"]
print(f"lockstep / peer: {ours[0] / peer[0]:.2f}x; ceiling with these convolutions "
      f"(peer step / lockstep conv): {peer[1] / ours[2]['conv_ms_per_step']:.2f}x")
for side, (_, _, conv) in rows.items():
    for p in conv["primitives"]:
        print(f"  {side:<9} {p['impl']:<22} {p['pass']:<17} x{p['calls_per_step']} {p['median_ms']:7.2f} ms  {p['problem']}")
PY
