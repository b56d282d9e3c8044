// Reducer overhead: Reducer::finalize() on one gradient of 1, 16 and 64 MiB (the gradient is a view
// of its bucket; the MPI backend's fingerprint-checked all-reduce; gradients pre-divided by the
// world size, as the Trainer does, so the sum is the average) against a bare MPI_Allreduce of the
// same bytes.
// Runs alternate so machine noise hits both alike; each run's time is the slowest rank's; medians
// and their ratio are printed. Run: mpirun -np 2 reducer_bench [reps]. Includes <mpi.h> for the
// bare baseline only.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "comm/factory.h"
#include "comm/mpi/mpi_runtime.h"
#include "comm/reducer.h"

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename F>
double timed(F f) {
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = std::chrono::steady_clock::now();
  f();
  double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), worst = 0;
  MPI_Allreduce(&dt, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace lockstep;
  try {
    MpiRuntime mpi(&argc, &argv);
    const int reps = argc > 1 ? std::atoi(argv[1]) : 10;
    lockstep::CommSpec spec;
    spec.backend = "mpi";
    auto comm = make_communicator(spec);
    MPI_Comm bare;
    MPI_Comm_dup(MPI_COMM_WORLD, &bare);
    if (comm->rank() == 0)
      std::printf("reducer finalize vs bare MPI_Allreduce, %d ranks, %d runs each (slowest rank, median ms)\n"
                  "%8s %12s %12s %8s\n", comm->size(), reps, "MiB", "reducer", "bare", "ratio");
    comm->set_phase(1, CommMode::kTrain);
    for (size_t mib : {1, 16, 64}) {
      const size_t n = mib << 18;  // floats
      Parameter p{Tensor::full({static_cast<int64_t>(n)}, 1.f), Tensor::full({static_cast<int64_t>(n)}, 1.f)};
      const auto bytes = static_cast<int64_t>(n * sizeof(float));
      Reducer reducer(*comm, {{"p", &p}}, ReducerOptions{.bucket_bytes = bytes, .first_bucket_bytes = bytes, .predivided = true, .find_unused_parameters = true});
      std::vector<float> x(n, 1.f);
      std::vector<double> tr, tb;
      for (int r = 0; r < reps + 1; ++r) {
        const double a = timed([&] { reducer.finalize(); });
        const double b = timed([&] { MPI_Allreduce(MPI_IN_PLACE, x.data(), int(n), MPI_FLOAT, MPI_SUM, bare); });
        if (r == 0) continue;  // warm-up
        tr.push_back(a);
        tb.push_back(b);
      }
      if (comm->rank() == 0)
        std::printf("%8zu %12.3f %12.3f %8.3f\n", mib, median(tr) * 1e3, median(tb) * 1e3, median(tr) / median(tb));
    }
    MPI_Comm_free(&bare);
    comm.reset();
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "reducer_bench: error: %s\n", e.what());
    lockstep::mpi_abort(1);
  }
}
