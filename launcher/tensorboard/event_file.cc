// Event files of scalar summaries, one TFRecord per Event.
#include "launcher/tensorboard/event_file.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdio>

#include "proto/tensorboard_events.pb.h"

namespace lockstep::tensorboard {
namespace {

double unix_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

std::string this_host() {
  char name[HOST_NAME_MAX + 1] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || !name[0]) return "localhost";
  return name;
}

void write_event(RecordWriter& out, ::tensorboard::Event& e) {
  e.set_wall_time(unix_now());
  out.write(e.SerializeAsString());
}

}  // namespace

std::string event_file_name(int64_t unix_seconds, const std::string& hostname, long pid, int serial) {
  char head[64];
  std::snprintf(head, sizeof head, "events.out.tfevents.%010lld.", static_cast<long long>(unix_seconds));
  return head + hostname + "." + std::to_string(pid) + "." + std::to_string(serial);
}

// Files this process has opened: two writers started in the same second get different names.
static std::atomic<int> files_opened{0};

EventFileWriter::EventFileWriter(const std::string& dir)
    : out_(dir + "/" + event_file_name(static_cast<int64_t>(unix_now()), this_host(), static_cast<long>(::getpid()),
                                       files_opened.fetch_add(1))) {
  ::tensorboard::Event e;
  e.set_file_version("brain.Event:2");
  write_event(out_, e);
}

void EventFileWriter::add_scalars(int64_t step, const std::vector<Scalar>& values) {
  if (values.empty()) return;
  ::tensorboard::Event e;
  e.set_step(step);
  ::tensorboard::Summary* s = e.mutable_summary();
  for (const Scalar& v : values) {
    ::tensorboard::Summary::Value* out = s->add_value();
    out->set_tag(v.tag);
    out->set_simple_value(v.value);
  }
  write_event(out_, e);
}

void EventFileWriter::session_start(int64_t step) {
  ::tensorboard::Event e;
  e.set_step(step);
  e.mutable_session_log()->set_status(::tensorboard::SessionLog::START);
  write_event(out_, e);
}

}  // namespace lockstep::tensorboard
