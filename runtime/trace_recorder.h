// TraceRecorder: one rank's timeline of a training run, after Horovod's timeline: complete spans
// (start, duration) of each layer's forward and backward, each gradient bucket's all-reduce, the
// optimizer step, the step agreement, and the eval and checkpoint phases, over a range of optimizer
// steps. Written as Chrome trace-event JSON (RUN_DIR/trace/rank-N.json, one process per rank:
// pid = rank); the launcher merges the ranks' files into RUN_DIR/trace.json (launcher/trace_merge.h).
//
// Cost: a call site holds a TraceRecorder* that is null when tracing is off (the default), so it
// tests one pointer. With a recorder, outside its step range one relaxed atomic load; inside, two
// clock reads and a store into a buffer preallocated per lane (no allocation, no lock). Spans past
// the buffer (TraceOptions::max_events) are counted as dropped and the count is written in the file.
//
// Note [trace clock]: timestamps are whole microseconds of the wall clock (CLOCK_REALTIME, since
// the Unix epoch), read once when the recorder starts and advanced by steady_clock from then on, so
// no span stretches with an NTP step and the ranks of one host agree to a few microseconds; across
// hosts the axes agree as well as the hosts' clocks do (NTP: well under a millisecond on a LAN).
// Durations are the difference of the rounded end and start, so nested spans stay nested.
//
// Lanes (the trace's tid): kTrain for the training thread, kComm for the communication thread
// (comm/comm_thread.h, which records a collective issued under a TraceTagScope). Each lane has one
// writer. The file is written by the training thread at the first step after the range, or by
// finish() at the end of the job (also a failed one). snapshot() writes what was recorded so far from
// any thread, for a process that may be killed before it finishes (a worker told to stop while a
// peer is dead): spans are published with release stores, so a file written while a lane is still
// being appended to holds every span completed before it, and never a torn one.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace lockstep {

enum class TraceLane : uint8_t { kTrain = 0, kComm = 1 };
inline constexpr size_t kTraceLanes = 2;

// A span's kind: its "cat" in the file.
enum class TraceCat : uint8_t { kStep, kForward, kBackward, kAllReduce, kOptimizer, kAgreement, kEval, kCheckpoint };
const char* trace_cat_name(TraceCat c);  // "step", "forward", "backward", "allreduce", ...

struct TraceOptions {
  int rank = 0;
  int world_size = 0;  // ranks of the job, written as otherData.world_size; 0: unknown (not written)
  // Optimizer steps to record, 1-based and inclusive (step 1 is the job's first). Spans between
  // steps (eval, checkpoint) count with the step before them.
  uint64_t first_step = 1;
  uint64_t last_step = 0;
  size_t max_events = 200000;  // per lane; about 64 bytes each, reserved at construction
  std::string path{};          // the rank's file; empty: written only by write()
};

struct TraceArg {  // no initialisers: a TraceSpan of a null recorder writes nothing
  uint32_t key;  // an interned name
  int64_t value;
};
inline constexpr size_t kTraceMaxArgs = 4;  // per span; more are dropped

class TraceRecorder {
 public:
  explicit TraceRecorder(TraceOptions o);
  TraceRecorder(const TraceRecorder&) = delete;
  TraceRecorder& operator=(const TraceRecorder&) = delete;

  // The id of `name` in this recorder's table (thread-safe; call it once, outside hot loops).
  uint32_t intern(std::string_view name);
  const TraceOptions& options() const { return o_; }

  // Whether spans are recorded now (any thread).
  bool active() const { return active_.load(std::memory_order_relaxed); }
  // Microseconds on the trace clock (Note [trace clock]).
  int64_t now_us() const;
  // Appends one span to `lane` when active(); ts and dur in microseconds, dur >= 0.
  void record(TraceLane lane, uint32_t name, TraceCat cat, int64_t ts_us, int64_t dur_us,
              const TraceArg* args = nullptr, size_t nargs = 0);

  // The training thread, as optimizer step `step` (1-based) starts: recording turns on inside
  // [first_step, last_step]; at the first step past it the file is written (once).
  void begin_step(uint64_t step);
  // At the end of the job: writes the file if it was not written yet and the range was entered.
  void finish();
  // Any thread: writes the file with the spans recorded so far (if the range was entered and the
  // final file is not written yet), keeps recording; a later snapshot or finish() replaces it.
  void snapshot();
  bool written() const { return written_.load(); }
  // Whether a step of the range has begun (any thread).
  bool entered() const { return entered_.load(); }
  // Why writing the file failed ("" when it did not): begin_step and finish do not throw, so a
  // timeline that cannot be written never stops the training; the caller reports it.
  const std::string& error() const { return error_; }  // read it after finish(), on its thread
  size_t events(TraceLane lane) const;
  size_t dropped() const;

  // The rank's trace: {"traceEvents": [M events naming the process "rank N" and the lanes
  // "train"/"comm", then X events], "displayTimeUnit": "ms", "otherData": {...}}.
  std::string to_json() const;
  // to_json() into `path` atomically (a temporary file renamed into place), creating its
  // directory; throws Error naming the path.
  void write(const std::string& path) const;

 private:
  struct Event {
    int64_t ts = 0, dur = 0;
    uint32_t name = 0;
    TraceCat cat = TraceCat::kStep;
    uint8_t nargs = 0;
    std::array<TraceArg, kTraceMaxArgs> args{};
  };
  struct Lane {
    std::unique_ptr<Event[]> events;
    std::atomic<size_t> size{0};
    std::atomic<size_t> dropped{0};
  };

  TraceOptions o_;
  std::chrono::steady_clock::time_point t0_;
  int64_t wall0_us_ = 0;
  std::atomic<bool> active_{false};
  std::atomic<bool> entered_{false};
  std::atomic<bool> written_{false};
  std::mutex file_mu_;  // one writer of the file at a time (finish, snapshot)
  std::string error_;   // under file_mu_
  std::array<Lane, kTraceLanes> lanes_;
  mutable std::mutex names_mu_;
  std::vector<std::string> names_;
  std::unordered_map<std::string, uint32_t> ids_;
};

// A span on the training lane from construction to destruction; nothing when r is null or not
// active when it starts.
class TraceSpan {
 public:
  TraceSpan(TraceRecorder* r, uint32_t name, TraceCat cat) : r_(r && r->active() ? r : nullptr), name_(name), cat_(cat) {
    if (r_) t0_ = r_->now_us();
  }
  ~TraceSpan() {
    if (r_) r_->record(TraceLane::kTrain, name_, cat_, t0_, r_->now_us() - t0_, args_.data(), nargs_);
  }
  TraceSpan(const TraceSpan&) = delete;
  TraceSpan& operator=(const TraceSpan&) = delete;
  void arg(uint32_t key, int64_t value) {
    if (r_ && nargs_ < args_.size()) args_[nargs_++] = {key, value};
  }

 private:
  TraceRecorder* r_;
  uint32_t name_;
  TraceCat cat_;
  int64_t t0_ = 0;
  std::array<TraceArg, kTraceMaxArgs> args_;
  size_t nargs_ = 0;
};

// Note [collective tag]: what the communication thread records for the next collective this thread
// issues. A TraceTagScope set around a call of the Communicator (comm/communicator.h) hands the
// collective it queues a span name, kind and args; the queue takes the tag at issue time, on the
// caller's thread (take_trace_tag), and the communication thread records the collective's run on
// the kComm lane. An untagged collective records nothing; a tag no collective took is dropped when
// the scope ends.
struct TraceTag {
  TraceRecorder* rec = nullptr;
  uint32_t name = 0;
  TraceCat cat = TraceCat::kAllReduce;
  std::array<TraceArg, kTraceMaxArgs> args{};
  uint8_t nargs = 0;
};

class TraceTagScope {
 public:
  explicit TraceTagScope(const TraceTag& tag);  // a tag with a null or inactive recorder: no-op
  ~TraceTagScope();
  TraceTagScope(const TraceTagScope&) = delete;
  TraceTagScope& operator=(const TraceTagScope&) = delete;
};

// This thread's pending tag, cleared (rec null when none).
TraceTag take_trace_tag();

}  // namespace lockstep
