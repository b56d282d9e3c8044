#!/usr/bin/env bash
# The sanitizer stage: builds lockstep and the control, distributed and launch suites with
# AddressSanitizer and UndefinedBehaviorSanitizer into build-sanitize/, then runs those suites there.
# Any report aborts the process at fault, so its test fails. (ThreadSanitizer: configure with
# -DLOCKSTEP_SANITIZE=thread; it is not run here: Open MPI and gRPC are not built for it.)
# Extra arguments go to ctest (e.g. -R control_tests).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh >/dev/null
cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Release -DLOCKSTEP_SANITIZE=address,undefined \
  -DLOCKSTEP_WITH_CUDA=OFF >/dev/null
cmake --build build-sanitize -j"$(nproc)" --target lockstep control_tests distributed_tests launch_tests
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=0:halt_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-sanitize
ctest --output-on-failure --timeout 1500 -j"$(nproc)" -R 'control_tests|distributed_tests_np2|launch_tests' "$@"
