#!/usr/bin/env bash
# Throughput and memory of lockstep beside its PyTorch peer, measured in this one invocation:
# train samples/s at batch 128 (full SGD-momentum step), eval samples/s (eval mode, no-grad) and
# peak resident memory, for fmnist-cnn, fmnist-mlp and fmnist-resnet20, in fp32 and in bf16 mixed
# precision (lockstep `precision: BF16`; the peer under torch.autocast("cpu", dtype=torch.bfloat16)).
# One thread per process on both sides; data already in memory on both sides. Each figure of one
# process is the median of REPEATS timed runs. lockstep too runs in PEER_PROCESSES fresh processes
# per precision, and its best median is reported, by the peer's rule. The peer's throughput changes from one fresh process
# to the next, so it runs in PEER_PROCESSES fresh processes, and for the convolutional models in
# both memory formats (contiguous NCHW and channels_last, which PyTorch recommends for CNNs on CPU
# and which lockstep uses); the best median over all of them is the one reported (highest rate,
# lowest memory), with the memory format it came from. The per-process train medians are listed
# below the table.
# The peer is Debian's python3-torch 1.13: convolutions on oneDNN, dense layers on OpenBLAS
# (libopenblas0-pthread). The header says which kernels each side runs on. OpenBLAS 0.3.21 does
# not know every new CPU and then falls back to an old core type (Prescott: SSE3 kernels), which
# slows the peer's dense layers; the script sets OPENBLAS_CORETYPE=SkylakeX on an AVX-512 CPU, and
# warns when the core the peer got is still an old one.
# usage: bench/run.sh [STEPS_CNN=40] [STEPS_MLP=200] [REPEATS=5] [STEPS_RESNET=10] [PEER_PROCESSES=3]
# (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/args.sh
bench_args 5 "$@"
steps_cnn=${1:-40}
steps_mlp=${2:-200}
repeats=${3:-5}
steps_resnet=${4:-10}
peer_processes=${5:-3}
data=${DATA_DIR:-/usr/share/datasets/fashion-mnist}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
# A fair peer: on a CPU with AVX-512 (F, BW, DQ, VL) that OpenBLAS 0.3.21 does not recognise, it
# would fall back to Prescott's SSE3 kernels; SkylakeX's are the ones this CPU runs. An
# OPENBLAS_CORETYPE already set is kept.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q avx512bw /proc/cpuinfo && grep -q avx512dq /proc/cpuinfo &&
  grep -q avx512vl /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=SkylakeX
fi
py=/usr/bin/python3
bench=build/bench/train_bench

# lockstep's oneDNN: the libdnnl the benchmark binary loads, asked for the ISA it dispatches to.
dnnl=$(ldd "$bench" | awk '/libdnnl/ { print $3; exit }')
echo "lockstep: oneDNN ISA $($py bench/cpu_info.py onednn "$dnnl" 2>/dev/null || echo unknown)"

results=$(mktemp)
trap 'rm -f "$results"' EXIT
for model in fmnist-cnn fmnist-mlp fmnist-resnet20; do
  case $model in
    fmnist-cnn) steps=$steps_cnn formats="contiguous channels_last" ;;
    fmnist-mlp) steps=$steps_mlp formats="contiguous" ;;
    *) steps=$steps_resnet formats="contiguous channels_last" ;;
  esac
  for precision in fp32 bf16; do
    for ((p = 0; p < peer_processes; ++p)); do
      echo "{\"side\":\"lockstep\",\"result\":$("$bench" "$model" "$steps" "$repeats" "$data" "$precision")}" >>"$results"
    done
    for format in $formats; do
      for ((p = 0; p < peer_processes; ++p)); do
        echo "{\"side\":\"peer\",\"result\":$($py bench/torch_peer.py "$model" "$steps" "$repeats" "$data" \
          "$precision" "$format")}" >>"$results"
      done
    done
  done
done

$py - "$results" "$peer_processes" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
peer_processes = int(sys.argv[2])
peer = next(r["result"] for r in rows if r["side"] == "peer")
print(f"peer: torch {peer['torch']}, CPU capability {peer['cpu_capability']}, oneDNN ISA {peer['onednn_isa']}")
print(f"peer: OpenBLAS core {peer['openblas_core']}")
old_cores = {"Katmai", "Coppermine", "Northwood", "Prescott", "Banias", "Core2", "Penryn", "Dunnington",
             "Nehalem", "Atom", "Opteron", "Barcelona", "Bobcat", "Sandybridge", "Bulldozer", "Piledriver"}
flags = next((l for l in open("/proc/cpuinfo") if l.startswith("flags")), "").split()
core = peer["openblas_core"].split()[0]
if core in old_cores and "avx2" in flags:
    better = "SkylakeX" if "avx512f" in flags else "Haswell"
    print(f"WARNING: this CPU has AVX2{'/AVX-512' if 'avx512f' in flags else ''} but the peer's OpenBLAS chose "
          f"{core}: its dense layers run old kernels and its figures are not comparable; rerun with "
          f"OPENBLAS_CORETYPE={better} bench/run.sh")
print(f"lockstep: best median of {peer_processes} fresh processes, as the peer's (both sides' rates change "
      f"from one process to the next on this machine; every process's figure is listed below)")
print(f"peer: best median of {peer_processes} fresh processes per memory format (highest rate, lowest memory); "
      f"bf16 = torch.autocast(\"cpu\", dtype=torch.bfloat16)\n")
pick = {"train_samples_per_sec": max, "eval_samples_per_sec": max, "peak_rss_mb": min}


def best(model, precision, figure):
    theirs = [r["result"] for r in rows if r["side"] == "peer" and r["result"]["model"] == model
              and r["result"]["precision"] == precision]
    top = pick[figure](theirs, key=lambda t: t[figure])
    return top[figure], top["memory_format"]


def ours(model, precision):
    # The same rule as the peer's: each figure the best over lockstep's fresh processes.
    mine = [r["result"] for r in rows if r["side"] == "lockstep" and r["result"]["model"] == model
            and r["result"].get("precision", "fp32") == precision]
    return {f: pick[f](m[f] for m in mine) for f in pick}


print(f"{'model':<16} {'prec':<5} {'figure':<22} {'lockstep':>10} {'pytorch':>10} {'(format)':<14} {'ratio':>7}")
models = list(dict.fromkeys(r["result"]["model"] for r in rows))
for model in models:
    for precision in ("fp32", "bf16"):
        for f in pick:
            a = ours(model, precision)[f]
            b, fmt = best(model, precision, f)
            print(f"{model:<16} {precision:<5} {f:<22} {a:>10.1f} {b:>10.1f} {fmt:<14} {a / b:>6.2f}x")
print()
for model in models:
    t32 = ours(model, "fp32")["train_samples_per_sec"]
    t16 = ours(model, "bf16")["train_samples_per_sec"]
    p32, f32 = best(model, "fp32", "train_samples_per_sec")
    p16, f16 = best(model, "bf16", "train_samples_per_sec")
    m32, m16 = ours(model, "fp32")["peak_rss_mb"], ours(model, "bf16")["peak_rss_mb"]
    print(f"{model}: lockstep bf16 train {t16:.1f}/s = {t16 / p32:.2f}x PyTorch fp32 ({f32}), "
          f"{t16 / p16:.2f}x PyTorch bf16 autocast ({f16}); lockstep bf16 {t16 / t32:.2f}x its fp32; "
          f"peak RSS bf16 {m16:.0f} MB vs fp32 {m32:.0f} MB")
spread = []
for model in models:
    for precision in ("fp32", "bf16"):
        for fmt in ("contiguous", "channels_last"):
            v = [r["result"]["train_samples_per_sec"] for r in rows if r["side"] == "peer"
                 and r["result"]["model"] == model and r["result"]["precision"] == precision
                 and r["result"]["memory_format"] == fmt]
            if v:
                spread.append(f"{model} {precision} {fmt} " + " ".join(f"{x:.1f}" for x in v))
for model in models:
    for precision in ("fp32", "bf16"):
        v = [r["result"]["train_samples_per_sec"] for r in rows if r["side"] == "lockstep"
             and r["result"]["model"] == model and r["result"].get("precision", "fp32") == precision]
        spread.append(f"lockstep {model} {precision} " + " ".join(f"{x:.1f}" for x in v))
print("\ntrain samples/s per process (peer, then lockstep):\n  " + "\n  ".join(spread))
PY
