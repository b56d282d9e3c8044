// All-reduce overhead of lockstep's fingerprint check: the MPI backend's all_reduce(...).wait()
// with fingerprints checked (fingerprint exchange + hand-off to the communication thread +
// MPI_Allreduce) against its peer, the same backend with CommOptions::check_fingerprints = false
// (hand-off + MPI_Allreduce only: the nearest to a bare MPI_Allreduce that the public comm
// interface offers), at 1, 16 and 64 MiB. Runs alternate between the two so machine noise hits
// both alike; each run's time is the slowest rank's; medians are printed with their ratio.
// Run: mpirun -np 2 allreduce_bench [reps]. Uses only the public comm interface (no <mpi.h>).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

#include "comm/factory.h"

namespace {

using lockstep::Communicator;

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds of the slowest rank for one call of f, all ranks starting together (barrier and max
// taken on `sync`, outside the timed span).
template <typename F>
double timed(Communicator& sync, F f) {
  sync.barrier().wait();
  const double t0 = now_s();
  f();
  double worst = now_s() - t0;
  sync.all_reduce(std::span<double>(&worst, 1), lockstep::ReduceOp::kMax).wait();
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lockstep;
  std::unique_ptr<Communicator> checked, peer;
  try {
    const int reps = argc > 1 ? std::atoi(argv[1]) : 21;
    // `checked` is created first: it initialises MPI and finalizes it when destroyed, after `peer`.
    checked = make_communicator({"mpi", CommOptions{}});
    peer = make_communicator({"mpi", CommOptions{.check_fingerprints = false}});
    if (checked->rank() == 0)
      std::printf("all_reduce(sum, float), %d ranks, %d runs each (slowest rank); median, and min\n"
                  "checked: fingerprints on; peer: the same mpi backend, fingerprints off\n"
                  "%8s %12s %12s %8s %12s %12s %8s\n", checked->size(), reps, "MiB", "checked ms",
                  "peer ms", "ratio", "min checked", "min peer", "ratio");
    for (size_t mib : {1, 16, 64}) {
      std::vector<float> x(mib * (1 << 20) / sizeof(float), 1.f);
      std::vector<double> t_checked, t_peer;
      for (int r = -2; r < reps; ++r) {  // two warm-up runs of each
        const double a = timed(*peer, [&] { checked->all_reduce(std::span<float>(x), ReduceOp::kSum).wait(); });
        const double b = timed(*peer, [&] { peer->all_reduce(std::span<float>(x), ReduceOp::kSum).wait(); });
        if (r >= 0) {
          t_checked.push_back(a);
          t_peer.push_back(b);
        }
        std::fill(x.begin(), x.end(), 1.f);  // keep values finite
      }
      const double mc = median(t_checked) * 1e3, mp = median(t_peer) * 1e3;
      const double lc = *std::min_element(t_checked.begin(), t_checked.end()) * 1e3;
      const double lp = *std::min_element(t_peer.begin(), t_peer.end()) * 1e3;
      if (checked->rank() == 0)
        std::printf("%8zu %12.3f %12.3f %8.3f %12.3f %12.3f %8.3f\n", mib, mc, mp, mc / mp, lc, lp, lc / lp);
    }
    peer.reset();
    checked.reset();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "allreduce_bench: error: %s\n", e.what());
    if (checked) checked->abort(1);  // ends every rank, not only this one
    return 1;
  }
}
