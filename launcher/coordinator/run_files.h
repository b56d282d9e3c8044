// The run directory's files for scripts (coordinator.proto: CoordinatorAddress, JobResult):
//   RUN_DIR/coordinator.json  where the coordinator listens; written atomically when it starts,
//                             removed once it has stopped (a killed launcher leaves it: stale when
//                             its pid is not alive on its host);
//   RUN_DIR/result.json       how the job ended; written atomically at the launcher's end, before
//                             the coordinator stops; a new run in the directory removes the old one
//                             when it starts.
// Both are JSON objects with the proto's field names (int64 as JSON numbers).
#pragma once

#include <string>

#include "proto/coordinator.pb.h"

namespace lockstep {

inline constexpr const char* kAddressFile = "coordinator.json";
inline constexpr const char* kResultFile = "result.json";

// The message as one JSON object: scalar fields by their proto names (every field, defaults too;
// enums by name), singular messages as objects, repeated messages as arrays.
std::string message_json(const google::protobuf::Message& m);

// What this process writes for its coordinator: address, TLS, job, this host, pid and now.
proto::CoordinatorAddress address_record(const std::string& address, bool tls, const std::string& job,
                                         const std::string& token_file);

// RUN_DIR/coordinator.json, read and checked. Throws Error naming the file: missing (no coordinator
// started there, or it has stopped: see result.json), unreadable, not the JSON of a
// CoordinatorAddress, or stale (its pid is not alive on this host, which is its host).
proto::CoordinatorAddress read_address_file(const std::string& run_dir);

// Writes `body` to `path` atomically (a temporary file renamed over it) with `mode`; throws Error
// naming the path.
void write_file_atomically(const std::string& path, const std::string& body, unsigned mode);

// The coordinator's files in a run directory, for one process that serves it: started() removes a
// previous run's result.json and writes coordinator.json; ended() writes result.json; the
// destructor removes coordinator.json (declare this before the server, so it goes after it).
class CoordinatorFiles {
 public:
  CoordinatorFiles() = default;
  ~CoordinatorFiles();
  CoordinatorFiles(const CoordinatorFiles&) = delete;
  CoordinatorFiles& operator=(const CoordinatorFiles&) = delete;

  void started(const std::string& run_dir, const proto::CoordinatorAddress& a);
  void ended(const proto::JobResult& r) const;

 private:
  std::string run_dir_;
};

}  // namespace lockstep
