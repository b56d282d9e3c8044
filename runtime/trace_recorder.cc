// TraceRecorder: span buffers per lane, the step range, and the rank's trace-event JSON.
#include "runtime/trace_recorder.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "runtime/check.h"

namespace lockstep {
namespace {

thread_local TraceTag t_tag;

// name as a JSON string literal (RFC 8259 escapes).
void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += ch;
    }
  }
  out += '"';
}

const char* lane_name(size_t lane) { return lane == static_cast<size_t>(TraceLane::kComm) ? "comm" : "train"; }

}  // namespace

const char* trace_cat_name(TraceCat c) {
  switch (c) {
    case TraceCat::kStep: return "step";
    case TraceCat::kForward: return "forward";
    case TraceCat::kBackward: return "backward";
    case TraceCat::kAllReduce: return "allreduce";
    case TraceCat::kOptimizer: return "optimizer";
    case TraceCat::kAgreement: return "agreement";
    case TraceCat::kEval: return "eval";
    case TraceCat::kCheckpoint: return "checkpoint";
  }
  return "other";
}

TraceRecorder::TraceRecorder(TraceOptions o) : o_(std::move(o)) {
  LOCKSTEP_CHECK(o_.first_step >= 1 && o_.last_step >= o_.first_step && o_.max_events > 0)
      << "trace range " << o_.first_step << ":" << o_.last_step << ", " << o_.max_events << " events";
  // Note [trace clock]: one reading of each clock, as close together as two calls get.
  const auto wall = std::chrono::system_clock::now();
  t0_ = std::chrono::steady_clock::now();
  wall0_us_ = std::chrono::duration_cast<std::chrono::microseconds>(wall.time_since_epoch()).count();
  for (Lane& l : lanes_) l.events.reset(new Event[o_.max_events]);
}

uint32_t TraceRecorder::intern(std::string_view name) {
  std::lock_guard lk(names_mu_);
  const std::string key(name);
  if (auto it = ids_.find(key); it != ids_.end()) return it->second;
  const auto id = static_cast<uint32_t>(names_.size());
  names_.push_back(key);
  ids_.emplace(key, id);
  return id;
}

int64_t TraceRecorder::now_us() const {
  return wall0_us_ +
         std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0_).count();
}

void TraceRecorder::record(TraceLane lane, uint32_t name, TraceCat cat, int64_t ts_us, int64_t dur_us,
                           const TraceArg* args, size_t nargs) {
  if (!active()) return;
  Lane& l = lanes_[static_cast<size_t>(lane)];
  const size_t i = l.size.load(std::memory_order_relaxed);  // one writer per lane
  if (i >= o_.max_events) {
    l.dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Event& e = l.events[i];
  e.ts = ts_us;
  e.dur = dur_us < 0 ? 0 : dur_us;
  e.name = name;
  e.cat = cat;
  e.nargs = static_cast<uint8_t>(std::min(nargs, e.args.size()));
  for (size_t a = 0; a < e.nargs; ++a) e.args[a] = args[a];
  l.size.store(i + 1, std::memory_order_release);
}

void TraceRecorder::begin_step(uint64_t step) {
  const bool in = step >= o_.first_step && step <= o_.last_step;
  if (in) entered_ = true;
  active_.store(in, std::memory_order_relaxed);
  if (!in && step > o_.last_step) finish();
}

void TraceRecorder::finish() {
  active_.store(false, std::memory_order_relaxed);
  std::lock_guard lk(file_mu_);
  if (!entered_ || written_) return;
  written_ = true;  // once, even if the write fails (error() says why)
  if (o_.path.empty()) return;
  try {
    write(o_.path);
  } catch (const std::exception& e) {
    error_ = e.what();
  }
}

void TraceRecorder::snapshot() {
  std::lock_guard lk(file_mu_);
  if (!entered_ || written_ || o_.path.empty()) return;
  try {
    write(o_.path);
  } catch (const std::exception& e) {
    error_ = e.what();
  }
}

size_t TraceRecorder::events(TraceLane lane) const {
  return lanes_[static_cast<size_t>(lane)].size.load(std::memory_order_acquire);
}

size_t TraceRecorder::dropped() const {
  size_t n = 0;
  for (const Lane& l : lanes_) n += l.dropped.load(std::memory_order_relaxed);
  return n;
}

std::string TraceRecorder::to_json() const {
  std::vector<std::string> names;
  {
    std::lock_guard lk(names_mu_);
    names = names_;
  }
  const std::string pid = std::to_string(o_.rank);
  std::string out = "{\"traceEvents\":[\n";
  out += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + pid + ",\"tid\":0,\"args\":{\"name\":\"rank " + pid +
         "\"}},\n";
  out += "{\"name\":\"process_sort_index\",\"ph\":\"M\",\"pid\":" + pid + ",\"tid\":0,\"args\":{\"sort_index\":" +
         pid + "}}";
  for (size_t lane = 0; lane < kTraceLanes; ++lane) {
    const std::string tid = std::to_string(lane + 1);
    out += ",\n{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" + pid + ",\"tid\":" + tid + ",\"args\":{\"name\":\"" +
           lane_name(lane) + "\"}}";
    out += ",\n{\"name\":\"thread_sort_index\",\"ph\":\"M\",\"pid\":" + pid + ",\"tid\":" + tid +
           ",\"args\":{\"sort_index\":" + tid + "}}";
  }
  for (size_t lane = 0; lane < kTraceLanes; ++lane) {
    const Lane& l = lanes_[lane];
    const size_t n = l.size.load(std::memory_order_acquire);
    const std::string tid = std::to_string(lane + 1);
    for (size_t i = 0; i < n; ++i) {
      const Event& e = l.events[i];
      out += ",\n{\"name\":";
      json_string(out, e.name < names.size() ? names[e.name] : "?");
      out += ",\"cat\":\"";
      out += trace_cat_name(e.cat);
      out += "\",\"ph\":\"X\",\"ts\":" + std::to_string(e.ts) + ",\"dur\":" + std::to_string(e.dur) +
             ",\"pid\":" + pid + ",\"tid\":" + tid;
      if (e.nargs > 0) {
        out += ",\"args\":{";
        for (size_t a = 0; a < e.nargs; ++a) {
          if (a > 0) out += ',';
          json_string(out, e.args[a].key < names.size() ? names[e.args[a].key] : "?");
          out += ':' + std::to_string(e.args[a].value);
        }
        out += '}';
      }
      out += '}';
    }
  }
  out += "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"rank\":" + pid +
         (o_.world_size > 0 ? ",\"world_size\":" + std::to_string(o_.world_size) : std::string()) +
         ",\"first_step\":" + std::to_string(o_.first_step) + ",\"last_step\":" + std::to_string(o_.last_step) +
         ",\"dropped_events\":" + std::to_string(dropped()) +
         ",\"clock\":\"CLOCK_REALTIME microseconds since the Unix epoch\"}}\n";
  return out;
}

void TraceRecorder::write(const std::string& path) const {
  namespace fs = std::filesystem;
  const fs::path p(path);
  std::error_code ec;
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  LOCKSTEP_FAIL_IF(ec) << "trace: cannot create the directory " << p.parent_path().string() << ": " << ec.message();
  // Two writers in one process are serialised by file_mu_; the pid keeps processes apart. Errors
  // name the file the user asked for, not the temporary one.
  const std::string tmp = path + ".tmp-" + std::to_string(::getpid());
  const std::string text = to_json();
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    LOCKSTEP_FAIL_IF(!f) << "trace: cannot write " << path << ": " << std::strerror(errno);
    f.write(text.data(), static_cast<std::streamsize>(text.size()));
    f.flush();
    if (!f) {
      const int err = errno;
      f.close();
      fs::remove(tmp, ec);
      LOCKSTEP_FAIL_IF(true) << "trace: writing " << path << " failed: " << std::strerror(err);
    }
  }
  fs::rename(tmp, p, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(tmp, ignored);
  }
  LOCKSTEP_FAIL_IF(ec) << "trace: cannot write " << path << ": " << ec.message();
}

TraceTagScope::TraceTagScope(const TraceTag& tag) {
  t_tag = tag.rec && tag.rec->active() ? tag : TraceTag{};
}

TraceTagScope::~TraceTagScope() { t_tag = TraceTag{}; }

TraceTag take_trace_tag() {
  TraceTag t = t_tag;
  t_tag = TraceTag{};
  return t;
}

}  // namespace lockstep
