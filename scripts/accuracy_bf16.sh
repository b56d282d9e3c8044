#!/usr/bin/env bash
# bf16 against fp32 accuracy (not a CI test: 6 runs of 3 epochs, tens of minutes on 2 cores): a
# reference model trained with `lockstep train` from launcher/jobs/<model>.textproto (fmnist-cnn by
# default; MODELS="fmnist-cnn fmnist-resnet20" for more) for EPOCHS epochs (default 3), once with
# precision FP32 and once with precision BF16, for each of SEEDS (default 1 2 3). Prints each run's
# final test accuracy and, per seed, bf16 - fp32, then the mean difference. Runs single-process;
# fmnist-resnet20 has no single-rank job file, so its DDP one is used under `lockstep train`.
# usage: [MODELS=...] [SEEDS="1 2 3"] [EPOCHS=3] scripts/accuracy_bf16.sh [lockstep train options]
# (after building: cmake --build build --target lockstep)
set -euo pipefail
cd "$(dirname "$0")/.."
models=${MODELS:-fmnist-cnn}
seeds=${SEEDS:-1 2 3}
epochs=${EPOCHS:-3}
export OMP_NUM_THREADS=1
out=runs/accuracy-bf16
mkdir -p "$out"
results=$out/results.tsv
: > "$results"
echo "bf16 vs fp32: models $models, seeds $seeds, $epochs epochs, $(date -u +%FT%TZ), $(nproc) cores"
for model in $models; do
  base=launcher/jobs/$model.textproto
  [ -f "$base" ] || base=launcher/jobs/$model-ddp.textproto
  for precision in FP32 BF16; do
    # The job file with its precision and its own run dir (a field set twice is a parse error).
    job=$out/$model-$precision.textproto
    { grep -v -e '^precision:' -e '^run_dir:' "$base"; echo "precision: $precision"; echo "run_dir: \"$out/$model-$precision\""; } > "$job"
    for seed in $seeds; do
      metrics=$out/$model-$precision-seed$seed.jsonl
      rm -f "$metrics"
      build/launcher/lockstep train "$job" --seed "$seed" --epochs "$epochs" --metrics "$metrics" "$@" > /dev/null
      acc=$(/usr/bin/python3 -c 'import json,sys; print([e for e in map(json.loads, open(sys.argv[1])) if e.get("kind","epoch")=="epoch"][-1]["test_accuracy"])' "$metrics")
      printf '%s\t%s\t%s\t%s\n' "$model" "$precision" "$seed" "$acc" | tee -a "$results"
    done
  done
done
/usr/bin/python3 - "$results" <<'PY'
import sys
acc = {}
for line in open(sys.argv[1]):
    model, precision, seed, a = line.split()
    acc[(model, precision, seed)] = float(a)
for model in sorted({k[0] for k in acc}):
    diffs = []
    for seed in sorted({k[2] for k in acc if k[0] == model}):
        f, b = acc.get((model, "FP32", seed)), acc.get((model, "BF16", seed))
        if f is None or b is None:
            continue
        diffs.append(b - f)
        print(f"{model} seed {seed}: fp32 {f:.4f}  bf16 {b:.4f}  bf16 - fp32 {b - f:+.4f}")
    if diffs:
        print(f"{model}: mean bf16 - fp32 {sum(diffs) / len(diffs):+.4f} over {len(diffs)} seeds")
PY
