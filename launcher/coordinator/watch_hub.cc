// Watch streams' fan-out (see watch_hub.h).
#include "launcher/coordinator/watch_hub.h"

namespace lockstep {

std::shared_ptr<WatchHub::Watcher> WatchHub::add(proto::WatchEvent first) {
  std::lock_guard<std::mutex> lock(mu_);
  if (static_cast<int>(watchers_.size()) >= max_watchers_)
    throw WatchLimit("Watch: this coordinator already serves " + std::to_string(watchers_.size()) +
                     " watchers, its limit (max_watchers " + std::to_string(max_watchers_) +
                     "); end one of them, or poll Control STATUS");
  auto w = std::make_shared<Watcher>();
  w->queue.push_back(std::move(first));
  if (finished_) w->queue.push_back(*finished_);
  watchers_.insert(w);
  return w;
}

void WatchHub::remove(const std::shared_ptr<Watcher>& w) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    watchers_.erase(w);
  }
  cv_.notify_all();
}

void WatchHub::publish(const proto::WatchEvent& e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (e.kind() == proto::WatchEvent::FINISHED) finished_ = e;
    for (const auto& w : watchers_) {
      if (w->queue.size() >= kMaxQueued) w->overflow = true;
      else w->queue.push_back(e);
    }
  }
  cv_.notify_all();
}

void WatchHub::push(Watcher& w, proto::WatchEvent e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (w.queue.size() >= kMaxQueued) w.overflow = true;
    else w.queue.push_back(std::move(e));
  }
  cv_.notify_all();
}

WatchHub::Next WatchHub::next(Watcher& w, std::chrono::steady_clock::time_point until, proto::WatchEvent* out) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_until(lock, until, [&] { return closed_ || w.overflow || !w.queue.empty(); });
  // Queued events go out first, so a FINISHED published just before close() still reaches the client.
  if (w.overflow) return Next::kOverflow;
  if (!w.queue.empty()) {
    *out = std::move(w.queue.front());
    w.queue.pop_front();
    return Next::kEvent;
  }
  return closed_ ? Next::kClosed : Next::kTimeout;
}

bool WatchHub::wait_empty(double wait_s) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, std::chrono::duration<double>(wait_s), [&] { return watchers_.empty(); });
}

void WatchHub::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

int WatchHub::watchers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return static_cast<int>(watchers_.size());
}

}  // namespace lockstep
