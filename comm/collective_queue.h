// The fingerprint-and-queue plumbing of a collective, written once for the backends that run
// collectives on a CommThread (mpi, nccl): a backend derives from QueuedCommunicator, builds each
// collective's fingerprint with issue() when the collective is called (taking its sequence
// number), and hands only its data-moving call to CollectiveQueue::submit. The queue runs, on the
// communication thread and in issue order, the cross-rank fingerprint check (when
// CommOptions::check_fingerprints) and then that call; errors name the collective as
// "collective #12 all_reduce(sum, 128 floats, train, phase 3)".
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "comm/comm_thread.h"
#include "comm/communicator.h"
#include "comm/fingerprint.h"

namespace lockstep {

class QueuedCommunicator : public Communicator {
 protected:
  // `fp` with this rank's next sequence number and the declared phase and mode filled in; the
  // caller sets kind, dtype, count, and op or root where they apply.
  Fingerprint issue(Fingerprint fp);
};

class CollectiveQueue {
 public:
  // The cross-rank check of one fingerprint (FingerprintExchange::check for the MPI-bootstrapped
  // backends): returns when every rank agrees, throws Error naming the ranks otherwise.
  using Check = std::function<void(const Fingerprint& fp, std::chrono::milliseconds timeout)>;

  // `check` must stay callable while the thread may run (a stuck thread is detached, see
  // comm_thread.h, so it must not capture the communicator object itself).
  CollectiveQueue(CommOptions options, Check check);
  CollectiveQueue(const CollectiveQueue&) = delete;
  CollectiveQueue& operator=(const CollectiveQueue&) = delete;

  // Queues check(fp) then move() on the communication thread; wait() on the Work rethrows.
  Work submit(const Fingerprint& fp, std::function<void()> move);
  // The communication thread was declared stuck inside a transport call.
  bool stuck() const { return thread_.stuck(); }
  const CommOptions& options() const { return options_; }

 private:
  CommOptions options_;
  Check check_;
  CommThread thread_;  // last: destroyed (drained) first
};

}  // namespace lockstep
