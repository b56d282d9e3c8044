// TensorBoard event files: events.out.tfevents.<unix seconds, 10 digits>.<hostname>.<pid>.<n> in a
// directory (n counts this process's files from 0; the name TensorBoard's own EventFileWriter gives),
// a TFRecord file (record_writer.h) of tensorboard.Event protos (proto/tensorboard_events.proto)
// whose first record is file_version "brain.Event:2". TensorBoard reads every such file in a
// directory, so a resumed run starts a file of its own rather than appending to one.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "launcher/tensorboard/record_writer.h"

namespace lockstep::tensorboard {

struct Scalar {
  std::string tag;  // e.g. "train/loss"
  float value;      // TensorBoard's simple_value is float32
};

// "events.out.tfevents.1764542400.host.1234.0"
std::string event_file_name(int64_t unix_seconds, const std::string& hostname, long pid, int serial);

class EventFileWriter {
 public:
  // Creates dir/event_file_name(now, this host, this process) and writes the file_version record;
  // an Error naming the file when it cannot.
  explicit EventFileWriter(const std::string& dir);

  // One Event at step holding every value (a Summary of simple_values); flushed. Nothing for none.
  void add_scalars(int64_t step, const std::vector<Scalar>& values);
  // SessionLog START at step: TensorBoard's event loader drops what it read earlier at steps >= step
  // (the steps an interrupted run took past the checkpoint a resume starts from).
  void session_start(int64_t step);

  const std::string& path() const { return out_.path(); }

 private:
  RecordWriter out_;
};

}  // namespace lockstep::tensorboard
