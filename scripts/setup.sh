#!/usr/bin/env bash
# Installs every Debian 12 package lockstep needs (build, tests, golden generators, benchmark peer,
# data set), then configures and builds in Release mode into build/. Safe to run again.
# Kernel library: oneDNN (libdnnl-dev). libopenblas0-pthread serves the PyTorch peer's dense layers.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  build-essential cmake pkg-config git
  libopenmpi-dev openmpi-bin
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libboost-dev
  libgtest-dev libgmock-dev libbenchmark-dev zlib1g-dev
  libdnnl-dev libopenblas0-pthread
  dataset-fashion-mnist
  python3 python3-torch python3-numpy
  iproute2 procps openssl
  slurm-wlm munge
  ccache
  libcli11-dev
  nlohmann-json3-dev chromium python3-pil python3-protobuf python3-grpcio
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# ccache: a rebuild (and CI on a machine that built before) compiles only what changed.
launcher=()
if command -v ccache >/dev/null; then
  export CCACHE_BASEDIR="$PWD"
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "${launcher[@]}"
cmake --build build -j"$(nproc)"
