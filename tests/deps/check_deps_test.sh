#!/usr/bin/env bash
# Self-test of scripts/check_deps.sh (CTest DependencyCheckCatches): on a minimal tree whose
# allowed includes (MPI in comm/, gRPC in launcher/, comm/ from layers/) pass, one bad include
# (runtime/ including layers/) must fail the check with exactly that line printed.
# usage: tests/deps/check_deps_test.sh [CHECK_DEPS_SCRIPT]
set -euo pipefail

check=${1:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/scripts/check_deps.sh"}
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree"/{runtime,comm/mpi,layers,launcher,tests/comm}
printf '#include <vector>\n' > "$tree/runtime/tensor.h"
printf '#include <mpi.h>\n#include "comm/mpi/fingerprint_exchange.h"\n' > "$tree/comm/mpi/mpi_communicator.cc"
printf '#include "comm/communicator.h"\n#include "runtime/tensor.h"\n' > "$tree/layers/linear.h"
printf '#include <grpcpp/grpcpp.h>\n#include "layers/linear.h"\n' > "$tree/launcher/server.cc"
printf '#include "comm/factory.h"\n' > "$tree/tests/comm/all_reduce_test.cc"

fail() { echo "check_deps_test: $*" >&2; exit 1; }

bash "$check" "$tree" >/dev/null 2>&1 || fail "a tree of allowed includes fails the check"

printf '// A tensor op.\n#include <vector>\n#include "layers/linear.h"\n' > "$tree/runtime/op.cc"
rc=0
out=$(bash "$check" "$tree" 2>/dev/null) || rc=$?
[[ $rc -eq 1 ]] || fail "exit code $rc with a bad include, expected 1"
want='runtime/op.cc:3: #include "layers/linear.h"'
[[ $out == "$want" ]] || fail "printed \"$out\", expected \"$want\""
echo "check_deps_test: the bad include is caught and named"
