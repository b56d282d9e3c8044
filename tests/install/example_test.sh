#!/usr/bin/env bash
# InstalledPackage.ExampleBuildsAndTrainsOn2Ranks: what a user does with an installed lockstep.
# Installs BUILD_DIR into a fresh prefix, checks what landed there (every public header's includes
# resolve inside the prefix, no test or benchmark binary, no path of the build tree in the package
# config), builds examples/resnet out of tree against it with find_package(lockstep), and trains it
# for STEPS steps on 2 ranks under mpirun: exit 0, finite losses, and a test accuracy better than
# chance (0.1). Everything is written under a temporary directory, removed at the end.
# usage: example_test.sh BUILD_DIR SOURCE_DIR DATA_DIR MPIRUN [STEPS]
set -euo pipefail

build=$(cd "$1" && pwd) src=$(cd "$2" && pwd) data=$3 mpirun=$4 steps=${5:-30}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lockstep-install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
fail() { echo "InstalledPackage: $*" >&2; exit 1; }
run() {  # run LOG CMD...: quiet unless it fails
  local log=$1; shift
  "$@" >"$log" 2>&1 || { tail -n 60 "$log" >&2; fail "failed: $*"; }
}

run "$tmp/install.log" cmake --install "$build" --prefix "$prefix"
inc=$prefix/include/lockstep
[[ -f $prefix/lib/cmake/lockstep/lockstepConfig.cmake ]] || fail "no lib/cmake/lockstep/lockstepConfig.cmake"
for h in layers/conv2d.h layers/sync_batch_norm.h comm/factory.h launcher/train/trainer.h runtime/optim/sgd.h \
         runtime/data/dataset.h runtime/checkpoint/checkpoint.h proto/checkpoint.pb.h; do
  [[ -f $inc/$h ]] || fail "header $h not installed"
done
# Every quoted include of an installed header must be installed too (the example uses only some),
# beside the header (as protoc's includes are) or under include/lockstep.
missing=$(cd "$inc" && find . -name '*.h' | while read -r f; do
            grep -oE '^[[:space:]]*#[[:space:]]*include[[:space:]]*"[^"]+"' "$f" | sed -E 's/.*"([^"]+)"/\1/' |
              while read -r h; do [[ -f $h || -f $(dirname "$f")/$h ]] || echo "$f: $h"; done
          done)
[[ -z $missing ]] || fail "installed headers include headers that are not installed: $missing"
# Only the command among binaries: no test suite, no benchmark.
extra=$(find "$prefix" -type f \( -perm -u+x -o -name '*.a' -o -name '*.so*' \) |
        grep -vE "^$prefix/(bin/lockstep|lib[^/]*/liblockstep_(runtime|comm|layers|train|checkpoint|proto)\.a)$" || true)
[[ -z $extra ]] || fail "installed files that are no part of the package: $extra"
if grep -rlF -e "$build" -e "$src" "$prefix/lib"*/cmake; then fail "the package config names the build or source tree"; fi
if [[ -x $prefix/bin/lockstep ]]; then
  run "$tmp/help.log" "$prefix/bin/lockstep" --help
fi

launcher=()
command -v ccache >/dev/null && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
run "$tmp/configure.log" cmake -S "$src/examples/resnet" -B "$tmp/example" -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF "${launcher[@]}"
grep -q "lockstep_DIR:PATH=$prefix/" "$tmp/example/CMakeCache.txt" || fail "find_package(lockstep) did not find $prefix"
run "$tmp/build.log" cmake --build "$tmp/example" -j2

out=$tmp/run.log
set +e
timeout -k 10 300 "$mpirun" --oversubscribe --allow-run-as-root --mca btl self,vader,tcp -np 2 \
  "$tmp/example/resnet_example" "$data" "$steps" >"$out" 2>&1
rc=$?
set -e
cat "$out"
[[ $rc -eq 0 ]] || fail "the example exited with $rc on 2 ranks"
grep -qE '^step [0-9]+ loss ' "$out" || fail "no loss line"
awk '/^step [0-9]+ loss / { if ($4 !~ /^[0-9]+\.[0-9]+$/) bad = 1 } END { exit bad }' "$out" ||
  fail "a loss is not finite"
awk '/^test accuracy / { found = 1; if ($3 + 0 <= 0.15) low = 1 } END { exit !found || low }' "$out" ||
  fail "no test accuracy line, or an accuracy no better than chance (0.1)"
grep -q '(2 ranks)' "$out" || fail "the example did not run on 2 ranks"
echo "InstalledPackage: OK"
