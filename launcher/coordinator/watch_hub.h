// The fan-out behind the Watch RPC: JobState publishes each event while it holds its own mutex (so
// a new watcher's first STATUS and the events after it leave no gap), and every watcher has a
// bounded queue that its RPC handler drains into its stream. The FINISHED event is kept: a watcher
// that connects after it gets it at once. Pure C++ (no gRPC).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

#include "proto/coordinator.pb.h"
#include "runtime/check.h"

namespace lockstep {

// A Watch beyond the limit of watchers (the service answers RESOURCE_EXHAUSTED).
class WatchLimit : public Error {
 public:
  using Error::Error;
};

class WatchHub {
 public:
  static constexpr size_t kMaxQueued = 1024;  // events a watcher may fall behind before it is dropped

  struct Watcher {
    std::deque<proto::WatchEvent> queue;
    bool overflow = false;
  };
  enum class Next { kEvent, kTimeout, kClosed, kOverflow };

  explicit WatchHub(int max_watchers) : max_watchers_(max_watchers) {}

  // A new watcher whose queue starts with `first` (then FINISHED, if the job ended already).
  // Throws WatchLimit naming the limit when max_watchers are connected.
  std::shared_ptr<Watcher> add(proto::WatchEvent first);
  void remove(const std::shared_ptr<Watcher>& w);
  // To every watcher. A FINISHED event is also kept for those that connect later.
  void publish(const proto::WatchEvent& e);
  void push(Watcher& w, proto::WatchEvent e);  // to one watcher (its periodic STATUS)
  // The oldest queued event of `w` into *out (kEvent); else waits until `until` (kTimeout), the hub
  // closes (kClosed) or the watcher fell kMaxQueued events behind (kOverflow).
  Next next(Watcher& w, std::chrono::steady_clock::time_point until, proto::WatchEvent* out);
  // Waits until every watcher has left (each leaves once it was handed FINISHED), at most wait_s;
  // false when some remain.
  bool wait_empty(double wait_s);
  void close();  // the server stops: every next() answers kClosed
  int watchers() const;
  int max_watchers() const { return max_watchers_; }

 private:
  const int max_watchers_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::shared_ptr<Watcher>> watchers_;
  std::optional<proto::WatchEvent> finished_;
  bool closed_ = false;
};

}  // namespace lockstep
