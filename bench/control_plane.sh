#!/usr/bin/env bash
# The control plane's load curve: N simulated ranks (each its own gRPC connection) register with a
# real `lockstep coordinator` process over loopback and send a Heartbeat every INTERVAL_S, as
# workers do; printed per N: heartbeats answered per second, latency p50/p99/max (call issued ->
# reply, ms), the coordinator process's CPU (% of one core, from /proc utime+stime over the
# window), failed calls, ranks the launcher would declare lost, and the time all N took to register.
# The simulated ranks run in this process on a few client threads (gRPC async API), on the same
# cores as the coordinator: on a small machine their CPU competes with it, so latency here is an
# upper bound. RANKS_PER_NODE > 1 shares one connection among a node's ranks.
# usage: bench/control_plane.sh [SECONDS=10] [INTERVAL_S=0.5] [RANKS="64 256 1024 2048 4096"] [RANKS_PER_NODE=1]
# (after building the lockstep and coordinator_load targets in build/)
set -euo pipefail
if [ "${1:-}" = -h ] || [ "${1:-}" = --help ]; then
  sed -n '2,/^# usage/p' "$0" | sed 's/^# \{0,1\}//'
  exit 0
fi
cd "$(dirname "$0")/.."
seconds=${1:-10}
interval=${2:-0.5}
ranks=${3:-"64 256 1024 2048 4096"}
per_node=${4:-1}
build=${BUILD_DIR:-build}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "control plane: heartbeat every ${interval} s, ${seconds} s measured per row, $(nproc) cores, ranks per connection ${per_node}"
# shellcheck disable=SC2086
"$build/bench/coordinator_load" "$build/launcher/lockstep" "$work" "$seconds" "$interval" "$per_node" $ranks
