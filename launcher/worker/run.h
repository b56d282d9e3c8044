// One rank of a launched job: trains the coordinator's job on this rank's shard, running at each
// step boundary and each epoch end the phases every rank agreed on (step_control.h): EVAL
// (exact distributed eval), CHECKPOINT (rank 0 writes, atomically), PAUSE, STOP (checkpoint, then
// a clean exit). Heartbeats carry the step, step time and loss to the coordinator; rank 0 writes
// the per-step and per-epoch metrics to RUN_DIR/metrics.jsonl.
#pragma once

#include <atomic>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "launcher/coordinator/client.h"
#include "launcher/worker/step_metrics_board.h"
#include "proto/coordinator.pb.h"

namespace lockstep {

struct WorkerSetup {
  proto::RegisterReply reg;        // the job, run_dir, resume flag, heartbeat settings
  Communicator* comm = nullptr;
  CoordinatorClient* client = nullptr;
  std::atomic<bool>* terminate = nullptr;  // set by this rank's signal handler
  // What this rank's heartbeats send (started at registration, before run_worker): the step loop
  // publishes here.
  std::shared_ptr<StepMetricsBoard> board;
};

// Returns kExitDone (0) when the job finished, kExitStopped (3) when it stopped at a checkpoint
// before its end (a signal to any rank, or a STOP request); throws Error otherwise.
int run_worker(const WorkerSetup& w);

}  // namespace lockstep
