// One rank of a launched job: trains the coordinator's job on this rank's shard, running at each
// step boundary and each epoch end the phases every rank agreed on (step_control.h): EVAL
// (exact distributed eval), CHECKPOINT (rank 0 writes, atomically), PAUSE, STOP (checkpoint, then
// a clean exit). Heartbeats carry the step, step time and loss to the coordinator; rank 0 writes
// the per-step and per-epoch metrics to RUN_DIR/metrics.jsonl.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "comm/communicator.h"
#include "launcher/coordinator/client.h"
#include "launcher/worker/step_metrics_board.h"
#include "proto/coordinator.pb.h"

namespace lockstep {

class TraceRecorder;

// This rank's timeline recorder while run_worker has one, for the threads that may see the process
// end before the step loop does: the signal watcher (a stop while a peer is dead ends in mpirun's
// SIGKILL) and the heartbeat thread's exit on a lost coordinator. snapshot() writes the rank file
// with what was recorded so far (TraceRecorder::snapshot); nothing when no recorder is set.
class TraceHandle {
 public:
  void set(TraceRecorder* r) {
    std::lock_guard lk(mu_);
    rec_ = r;
  }
  void snapshot();

 private:
  std::mutex mu_;
  TraceRecorder* rec_ = nullptr;
};

struct WorkerSetup {
  proto::RegisterReply reg;        // the job, run_dir, resume flag, heartbeat settings
  Communicator* comm = nullptr;
  CoordinatorClient* client = nullptr;
  std::atomic<bool>* terminate = nullptr;  // set by this rank's signal handler
  // What this rank's heartbeats send (started at registration, before run_worker): the step loop
  // publishes here.
  std::shared_ptr<StepMetricsBoard> board;
  std::shared_ptr<TraceHandle> trace;  // may be null; run_worker sets and clears its recorder here
};

// Returns kExitDone (0) when the job finished, kExitStopped (3) when it stopped at a checkpoint
// before its end (a signal to any rank, or a STOP request); throws Error otherwise.
int run_worker(const WorkerSetup& w);

}  // namespace lockstep
