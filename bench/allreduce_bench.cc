// All-reduce overhead of the MPI backend: MpiCommunicator::all_reduce(...).wait() (fingerprint
// exchange + hand-off to the communication thread + MPI_Allreduce) against a bare MPI_Allreduce
// of the same bytes, at 1, 16 and 64 MiB. Runs alternate between the two so machine noise hits
// both alike; each run's time is the slowest rank's; medians are printed with their ratio.
// Run: mpirun -np 2 allreduce_bench [reps]. Includes <mpi.h> for the bare baseline only.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "comm/mpi/mpi_communicator.h"
#include "comm/mpi/mpi_runtime.h"

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Seconds of the slowest rank for one call of f, all ranks starting together.
template <typename F>
double timed(F f) {
  MPI_Barrier(MPI_COMM_WORLD);
  const double t0 = now_s();
  f();
  double dt = now_s() - t0, worst = 0;
  MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  lockstep::MpiRuntime mpi(&argc, &argv);
  const int reps = argc > 1 ? std::atoi(argv[1]) : 21;
  lockstep::MpiCommunicator comm;
  MPI_Comm bare;
  MPI_Comm_dup(MPI_COMM_WORLD, &bare);
  if (comm.rank() == 0)
    std::printf("all_reduce(sum, float), %d ranks, %d runs each (slowest rank); median, and min\n"
                "%8s %12s %12s %8s %12s %12s %8s\n", comm.size(), reps, "MiB", "backend ms",
                "bare ms", "ratio", "min backend", "min bare", "ratio");
  for (size_t mib : {1, 16, 64}) {
    std::vector<float> x(mib * (1 << 20) / sizeof(float), 1.f);
    std::vector<double> t_backend, t_bare;
    for (int r = -2; r < reps; ++r) {  // two warm-up runs of each
      const double a = timed([&] { comm.all_reduce(std::span<float>(x), lockstep::ReduceOp::kSum).wait(); });
      const double b = timed([&] {
        MPI_Allreduce(MPI_IN_PLACE, x.data(), int(x.size()), MPI_FLOAT, MPI_SUM, bare);
      });
      if (r >= 0) {
        t_backend.push_back(a);
        t_bare.push_back(b);
      }
      std::fill(x.begin(), x.end(), 1.f);  // keep values finite
    }
    const double mb = median(t_backend) * 1e3, mm = median(t_bare) * 1e3;
    const double lb = *std::min_element(t_backend.begin(), t_backend.end()) * 1e3;
    const double lm = *std::min_element(t_bare.begin(), t_bare.end()) * 1e3;
    if (comm.rank() == 0)
      std::printf("%8zu %12.3f %12.3f %8.3f %12.3f %12.3f %8.3f\n", mib, mb, mm, mb / mm, lb, lm,
                  lb / lm);
  }
  MPI_Comm_free(&bare);
  return 0;
}
