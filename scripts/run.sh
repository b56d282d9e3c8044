#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job: fmnist-cnn on Fashion-MNIST.
# Extra arguments go to `lockstep train` (e.g. --epochs 1, --seed 2).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/launcher/lockstep train launcher/jobs/fmnist-cnn.textproto --metrics fmnist-cnn.metrics.jsonl "$@"
