#!/usr/bin/env bash
# Data-parallel scaling on one machine: train samples/s of 1 rank and of 2 ranks (one thread per
# process, OMP_NUM_THREADS=1, fixed per-rank batch 128: weak scaling) for fmnist-cnn, fmnist-mlp and
# fmnist-resnet20 (fewer steps: one of its steps costs about 50 cnn steps),
# scaling efficiency = rate_2 / (2 * rate_1), lockstep (bench/ddp_bench.cc, MPI backend) beside
# PyTorch DDP over gloo (bench/torch_ddp_peer.py) measured in the same run, and the share of
# gradient communication hidden behind backward (bench/ddp_bench.cc: finalize wait without overlap
# minus with overlap, over a bare all-reduce of the same buckets).
# The lockstep-bf16 row: the same 2 ranks with gradient buckets all-reduced in bfloat16
# (comm_hook BF16_COMPRESS_HOOK, PyTorch DDP's bf16_compress_hook), against the same 1-rank rate.
# Each lockstep 2-rank line also says where a step went: wall ms per step, the training thread's
# CPU ms and the other threads' (the communication thread's, taken from the same core).
# The "2 solo at once" row is the machine's own ceiling: the same 1-rank benchmark in two independent
# processes started together, no communication at all; its efficiency is their summed rate over
# twice the lone process's. Where two cores slow each other (shared memory bandwidth, or host
# hyperthreads behind the vCPUs), 2-rank scaling cannot exceed it, whatever the communication.
# Issue 9 asks for a 2-rank efficiency of at least 0.90 on fmnist-resnet20; the last line says.
# usage: bench/scaling.sh [STEPS=40] [REPEATS=3] [STEPS_RESNET=8]   (after building: cmake --build build)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/args.sh
bench_args 3 "$@"
steps_default=${1:-40}
repeats=${2:-3}
steps_resnet=${3:-8}
bench=${DDP_BENCH:-build/bench/ddp_bench}
python=${PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=1
# A fair peer: on a CPU with AVX-512 (F, BW, DQ, VL) that OpenBLAS 0.3.21 does not recognise, it
# would fall back to Prescott's SSE3 kernels; SkylakeX's are the ones this CPU runs. An
# OPENBLAS_CORETYPE already set is kept.
if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -q avx512bw /proc/cpuinfo && grep -q avx512dq /proc/cpuinfo &&
  grep -q avx512vl /proc/cpuinfo; then
  export OPENBLAS_CORETYPE=SkylakeX
fi
mpirun_2=(timeout 600 mpirun --oversubscribe --allow-run-as-root --bind-to none --mca btl self,vader,tcp
          -x OMP_NUM_THREADS -np 2)
# A free local port for gloo's TCP rendezvous, chosen by the kernel, never hard-coded.
port() { "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
field() { sed -n "s/.*\"$1\": *\(-\?[0-9.]*\).*/\1/p"; }

resnet_eff=-
printf "%-16s %-17s %10s %10s %10s  %s\n" model impl "1 rank/s" "2 ranks/s" efficiency "hidden comm"
for model in fmnist-cnn fmnist-mlp fmnist-resnet20; do
  steps=$steps_default
  [ "$model" = fmnist-resnet20 ] && steps=$steps_resnet
  l1=$(timeout 600 "$bench" "$model" "$steps" 128 "$repeats")
  l2=$("${mpirun_2[@]}" "$bench" "$model" "$steps" 128 "$repeats")
  l2h=$("${mpirun_2[@]}" "$bench" "$model" "$steps" 128 "$repeats" 25 "" bf16_compress)
  solo_a=$(mktemp)
  solo_b=$(mktemp)
  timeout 600 "$bench" "$model" "$steps" 128 "$repeats" >"$solo_a" &
  timeout 600 "$bench" "$model" "$steps" 128 "$repeats" >"$solo_b"
  wait
  s2=$(awk -v a="$(field train_samples_per_sec <"$solo_a")" -v b="$(field train_samples_per_sec <"$solo_b")" \
    'BEGIN { printf "%.1f", a + b }')
  rm -f "$solo_a" "$solo_b"
  t1=$(timeout 600 "$python" bench/torch_ddp_peer.py "$model" 1 "$(port)" "$steps" 128 "$repeats" 2>/dev/null)
  t2=$(timeout 600 "$python" bench/torch_ddp_peer.py "$model" 2 "$(port)" "$steps" 128 "$repeats" 2>/dev/null)
  r1=$(echo "$l1" | field train_samples_per_sec)
  printf "%-16s %-17s %10.0f %10.0f %10s  %s\n" "$model" "2 solo at once" "$r1" "$s2" \
    "$(awk -v a="$r1" -v b="$s2" 'BEGIN { printf "%.2f", b / (2 * a) }')" \
    "(the machine's ceiling: two independent 1-rank processes, summed; no communication)"
  for impl in lockstep lockstep-bf16 pytorch-ddp-gloo; do
    case $impl in
      lockstep) a=$l1; b=$l2 ;;
      lockstep-bf16) a=$l1; b=$l2h ;;
      *) a=$t1; b=$t2 ;;
    esac
    r1=$(echo "$a" | field train_samples_per_sec)
    r2=$(echo "$b" | field train_samples_per_sec)
    eff=$(awk -v a="$r1" -v b="$r2" 'BEGIN { printf "%.2f", b / (2 * a) }')
    hidden="-"
    if [ "$impl" != pytorch-ddp-gloo ]; then
      hidden=$(echo "$b" | field hidden_share)
      hidden="$hidden (finalize wait $(echo "$b" | field serial_wait_ms_per_step) -> $(echo "$b" | field exposed_wait_ms_per_step) ms with overlap; bare all-reduce $(echo "$b" | field bare_allreduce_ms_per_step) ms;"
      hidden="$hidden step $(echo "$a" | field step_ms) -> $(echo "$b" | field step_ms) ms, train thread $(echo "$a" | field train_thread_cpu_ms_per_step) -> $(echo "$b" | field train_thread_cpu_ms_per_step) ms CPU, comm $(echo "$b" | field other_threads_cpu_ms_per_step) ms CPU)"
    fi
    printf "%-16s %-17s %10.0f %10.0f %10s  %s\n" "$model" "$impl" "$r1" "$r2" "$eff" "$hidden"
    if [ "$model-$impl" = fmnist-resnet20-lockstep ]; then resnet_eff=$eff; fi
  done
done
echo "hidden comm: (finalize wait with all-reduces after backward - finalize wait overlapped) / bare all-reduce"
echo "of the same buckets, per step, clamped to [0, 1]; a slower peer's lag sits in both waits and cancels."
echo "fmnist-resnet20: lockstep 2-rank efficiency $resnet_eff (issue 9 asks for >= 0.90):" \
     "$(awk -v e="$resnet_eff" 'BEGIN { print (e >= 0.90 ? "met" : "NOT met") }')" \
     "[2 ranks need 2 otherwise idle cores: $(getconf _NPROCESSORS_ONLN) here, load $(cut -d' ' -f1-3 /proc/loadavg)]"
