#!/usr/bin/env bash
# Throughput and memory of lockstep beside its PyTorch peer, measured in this one invocation:
# train samples/s at batch 128 (full SGD-momentum step), eval samples/s (eval mode, no-grad) and
# peak resident memory, for fmnist-cnn and fmnist-mlp. One thread per process on both sides; data
# already in memory on both sides. Each figure is the median of REPEATS timed runs.
# The peer is Debian's python3-torch 1.13 with libopenblas0-pthread (its dense layers on OpenBLAS).
# Usage: bench/run.sh [STEPS_CNN] [STEPS_MLP] [REPEATS]   (after scripts/setup.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
steps_cnn=${1:-40}
steps_mlp=${2:-200}
repeats=${3:-5}
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
py=/usr/bin/python3

field() { sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" <<<"$1"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

printf '%-11s %-22s %12s %12s %8s\n' model figure lockstep pytorch ratio
for model in fmnist-cnn fmnist-mlp; do
  steps=$steps_cnn
  [ "$model" = fmnist-mlp ] && steps=$steps_mlp
  ours=$(build/bench/train_bench "$model" "$steps" "$repeats")
  peer=$($py bench/torch_peer.py "$model" "$steps" "$repeats")
  for f in train_samples_per_sec eval_samples_per_sec peak_rss_mb; do
    a=$(field "$ours" $f)
    b=$(field "$peer" $f)
    printf '%-11s %-22s %12s %12s %8s\n' "$model" "$f" "$a" "$b" "$(ratio "$a" "$b")"
  done
done
