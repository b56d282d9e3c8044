// Reducer overhead: Reducer::finalize() on one gradient of 1, 16 and 64 MiB (the gradient is a view
// of its bucket; the MPI backend's fingerprint-checked all-reduce; gradients pre-divided by the
// world size, as the Trainer does, so the sum is the average) against its peer, an all-reduce of
// the same bytes on the same backend with CommOptions::check_fingerprints = false (hand-off to the
// communication thread + MPI_Allreduce: the nearest to a bare MPI_Allreduce that the public comm
// interface offers).
// Runs alternate so machine noise hits both alike; each run's time is the slowest rank's; medians
// and their ratio are printed. Run: mpirun -np 2 reducer_bench [reps]. Uses only the public comm
// interface (no <mpi.h>).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "comm/factory.h"
#include "comm/reducer.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds of the slowest rank for one call of f; barrier and max on `sync`, outside the timed span.
template <typename F>
double timed(lockstep::Communicator& sync, F f) {
  sync.barrier().wait();
  const auto t0 = std::chrono::steady_clock::now();
  f();
  double worst = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  sync.all_reduce(std::span<double>(&worst, 1), lockstep::ReduceOp::kMax).wait();
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lockstep;
  std::unique_ptr<Communicator> comm, peer;
  try {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 10;
    // `comm` is created first: it initialises MPI and finalizes it when destroyed, after `peer`.
    comm = make_communicator({"mpi", CommOptions{}});
    peer = make_communicator({"mpi", CommOptions{.check_fingerprints = false}});
    if (comm->rank() == 0)
      std::printf("reducer finalize vs peer all-reduce (mpi backend, fingerprints off), %d ranks, %d runs each "
                  "(slowest rank, median ms)\n%8s %12s %12s %8s\n", comm->size(), reps, "MiB", "reducer", "peer",
                  "ratio");
    comm->set_phase(1, CommMode::kTrain);
    for (size_t mib : {1, 16, 64}) {
      const size_t n = mib << 18;  // floats
      Parameter p{Tensor::full({static_cast<int64_t>(n)}, 1.f), Tensor::full({static_cast<int64_t>(n)}, 1.f)};
      const auto bytes = static_cast<int64_t>(n * sizeof(float));
      Reducer reducer(*comm, {{"p", &p}}, ReducerOptions{.bucket_bytes = bytes, .first_bucket_bytes = bytes, .predivided = true, .find_unused_parameters = true});
      std::vector<float> x(n, 1.f);
      std::vector<double> tr, tb;
      for (int r = 0; r < reps + 1; ++r) {
        const double a = timed(*peer, [&] { reducer.finalize(); });
        const double b = timed(*peer, [&] { peer->all_reduce(std::span<float>(x), ReduceOp::kSum).wait(); });
        if (r == 0) continue;  // warm-up
        tr.push_back(a);
        tb.push_back(b);
      }
      if (comm->rank() == 0)
        std::printf("%8zu %12.3f %12.3f %8.3f\n", mib, median(tr) * 1e3, median(tb) * 1e3, median(tr) / median(tb));
    }
    peer.reset();
    comm.reset();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reducer_bench: error: %s\n", e.what());
    if (comm) comm->abort(1);  // ends every rank, not only this one
    return 1;
  }
}
