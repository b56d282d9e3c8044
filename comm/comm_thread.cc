// CommThread: ordered execution of collectives on a dedicated thread, with a waiting watchdog.
#include "comm/comm_thread.h"

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "runtime/check.h"

namespace lockstep {

struct CommThread::Task {
  std::string what;
  std::function<void()> run;
  TraceTag tag;
  bool done = false;
  std::exception_ptr error;
};

struct CommThread::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::shared_ptr<Task>> queue;
  bool stopping = false;
  bool stuck = false;
  std::string broken;  // first error; see Note [broken communicator]
  std::shared_ptr<Task> running;
  std::chrono::steady_clock::time_point running_since;
  std::chrono::milliseconds stuck_after;
  std::thread thread;
};

namespace {

class TaskWork final : public WorkHandle {
 public:
  TaskWork(std::shared_ptr<void> shared, std::shared_ptr<void> task, std::function<void()> wait)
      : shared_(std::move(shared)), task_(std::move(task)), wait_(std::move(wait)) {}
  void wait() override { wait_(); }

 private:
  std::shared_ptr<void> shared_, task_;  // keep both alive while the handle lives
  std::function<void()> wait_;
};

}  // namespace

CommThread::CommThread(std::chrono::milliseconds stuck_after) : shared_(std::make_shared<Shared>()) {
  shared_->stuck_after = stuck_after;
  // The thread owns a reference: a detached (stuck) thread must not touch a destroyed CommThread.
  shared_->thread = std::thread([s = shared_] { loop(*s); });
}

CommThread::~CommThread() {
  {
    std::lock_guard lk(shared_->mu);
    shared_->stopping = true;
  }
  shared_->cv.notify_all();
  if (stuck())
    shared_->thread.detach();
  else
    shared_->thread.join();
}

bool CommThread::stuck() const {
  std::lock_guard lk(shared_->mu);
  return shared_->stuck;
}

void CommThread::loop(Shared& s) {
  std::unique_lock lk(s.mu);
  for (;;) {
    s.cv.wait(lk, [&] { return s.stopping || !s.queue.empty(); });
    if (s.queue.empty()) return;  // stopping and drained
    auto task = s.queue.front();
    s.queue.pop_front();
    s.running = task;
    s.running_since = std::chrono::steady_clock::now();
    if (!s.broken.empty()) {
      task->error = std::make_exception_ptr(
          Error(task->what + " not run: the communicator failed earlier: " + s.broken));
    } else {
      lk.unlock();
      // Recorded before done is set: the waiter returns after the span is in the buffer.
      TraceRecorder* rec = task->tag.rec;
      const int64_t t0 = rec ? rec->now_us() : 0;
      try {
        task->run();
        if (rec)
          rec->record(TraceLane::kComm, task->tag.name, task->tag.cat, t0, rec->now_us() - t0, task->tag.args.data(),
                      task->tag.nargs);
      } catch (const std::exception& e) {
        task->error = std::current_exception();
        lk.lock();
        s.broken = e.what();
        lk.unlock();
      }
      lk.lock();
    }
    task->run = nullptr;  // drop captured buffers
    task->done = true;
    s.running.reset();
    s.cv.notify_all();
  }
}

Work CommThread::submit(std::string what, std::function<void()> run, TraceTag tag) {
  auto task = std::make_shared<Task>();
  task->what = std::move(what);
  task->run = std::move(run);
  task->tag = tag;
  {
    std::lock_guard lk(shared_->mu);
    shared_->queue.push_back(task);
  }
  shared_->cv.notify_all();
  std::shared_ptr<Shared> s = shared_;
  auto wait = [s, task] {
    std::unique_lock lk(s->mu);
    while (!task->done) {
      s->cv.wait_for(lk, std::chrono::milliseconds(50));
      if (task->done) break;
      if (s->running && std::chrono::steady_clock::now() - s->running_since > s->stuck_after) {
        s->stuck = true;
        throw Error(task->what + ": the communication thread has been inside " + s->running->what +
                    " for more than " + std::to_string(s->stuck_after.count()) +
                    " ms (a rank died or the network stalled); abort the job");
      }
    }
    if (task->error) std::rethrow_exception(task->error);
  };
  return Work(std::make_unique<TaskWork>(s, task, std::move(wait)));
}

}  // namespace lockstep
