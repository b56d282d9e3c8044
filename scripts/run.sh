#!/usr/bin/env bash
# Sets everything up (scripts/setup.sh) and runs the main job: fmnist-cnn with SyncBatchNorm on
# Fashion-MNIST, on 2 local ranks through `lockstep launch`. Extra arguments go to `lockstep launch`
# (e.g. --epochs 1, --run-dir D, --resume).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec build/launcher/lockstep launch -n 2 launcher/jobs/fmnist-cnn-ddp.textproto "$@"
