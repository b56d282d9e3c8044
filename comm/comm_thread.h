// CommThread: one thread per communicator that runs its collectives in issue order (Horovod
// style), so communication overlaps the caller's compute and the transport library is entered
// from a single thread. wait() on a returned Work rethrows the task's error, and has a watchdog:
// if the thread sits in one task longer than `stuck_after` (a transport call that never returns),
// wait() throws instead of hanging; the caller should then abort the job.
//
// A task submitted with a TraceTag (Note [collective tag], runtime/trace_recorder.h) is recorded
// as a span on the recorder's comm lane, from the moment the thread starts it to its end.
//
// Note [broken communicator]: once a task fails (mismatch, timeout), ranks no longer agree on
// what the next message means, so every later task fails at once with the first error.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "comm/communicator.h"
#include "runtime/trace_recorder.h"

namespace lockstep {

class CommThread {
 public:
  explicit CommThread(std::chrono::milliseconds stuck_after);
  // Drains the queue (every rank issued these collectives), then joins; detaches instead if the
  // thread is stuck inside a transport call.
  ~CommThread();
  CommThread(const CommThread&) = delete;
  CommThread& operator=(const CommThread&) = delete;

  // `what` names the collective in errors ("collective #12 all_reduce(...)").
  Work submit(std::string what, std::function<void()> task, TraceTag tag = {});
  // True once the watchdog has declared the thread stuck (its transport state is unknown).
  bool stuck() const;

 private:
  struct Shared;
  struct Task;
  static void loop(Shared& s);
  std::shared_ptr<Shared> shared_;
};

}  // namespace lockstep
