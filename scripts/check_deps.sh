#!/usr/bin/env bash
# Checks that dependencies point one way (DESIGN.md, "Layout"): runtime <- comm <- layers <- launcher.
# Prints each offending `file:line: #include ...` and exits 1 when
#   - a file outside comm/ includes an MPI or NCCL header, or a private backend header (comm/mpi/,
#     comm/nccl/);
#   - a file outside launcher/ (and the launcher's own suites tests/control, tests/launch, and
#     proto/) includes a gRPC header (grpc/..., grpcpp/..., *.grpc.pb.h);
#   - runtime/ includes layers/, comm/ or launcher/; comm/ includes layers/ or launcher/; layers/
#     includes launcher/.
# Searches *.h *.cc *.cu *.cuh under runtime comm layers launcher bench examples tests.
# usage: scripts/check_deps.sh [SOURCE_DIR]   (default: the directory above this script)
set -euo pipefail

root=${1:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"}
cd "$root" || { echo "check_deps: source directory $root not found" >&2; exit 2; }

dirs=()
for d in runtime comm layers launcher bench examples tests; do
  [[ -d $d ]] && dirs+=("$d")
done
[[ ${#dirs[@]} -gt 0 ]] || { echo "check_deps: no source folders under $root" >&2; exit 2; }

# file:line:text of every #include, then one verdict per line in awk.
out=$(grep -rnE --include='*.h' --include='*.cc' --include='*.cu' --include='*.cuh' \
        '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "${dirs[@]}" | LC_ALL=C sort -t: -k1,1 -k2,2n |
  awk '
    {
      file = $0; sub(/:.*/, "", file)
      rest = substr($0, length(file) + 2); line = rest; sub(/:.*/, "", line)
      text = substr(rest, length(line) + 2)
      name = text; sub(/^[^<"]*[<"]/, "", name); sub(/[>"].*$/, "", name)
      angled = (text ~ /include[[:space:]]*</)
      base = name; sub(/.*\//, "", base)
      bad = 0
      in_comm = (file ~ /^comm\//)
      # MPI or NCCL: mpi.h / nccl.h anywhere, or <mpi...> / <nccl...> (mpi_ext.h, nccl_net.h).
      if (!in_comm && (base == "mpi.h" || base == "nccl.h" || (angled && name ~ /^(mpi|nccl)[^\/]*$/))) bad = 1
      if (!in_comm && name ~ /^comm\/(mpi|nccl)\//) bad = 1
      grpc_ok = (file ~ /^(launcher|tests\/control|tests\/launch|proto)\//)
      if (!grpc_ok && (name ~ /^grpc(pp)?(\/|\+\+|\.h$)/ || name ~ /\.grpc\.pb\.h$/)) bad = 1
      if (file ~ /^runtime\// && name ~ /^(layers|comm|launcher)\//) bad = 1
      if (file ~ /^comm\// && name ~ /^(layers|launcher)\//) bad = 1
      if (file ~ /^layers\// && name ~ /^launcher\//) bad = 1
      if (bad) { sub(/^[[:space:]]+/, "", text); print file ":" line ": " text }
    }') || true

if [[ -n $out ]]; then
  echo "$out"
  echo "check_deps: $(wc -l <<<"$out") include(s) break the one-way dependencies (DESIGN.md, \"Layout\")" >&2
  exit 1
fi
