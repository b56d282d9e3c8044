// Constant-time comparison, status names and PEM reading for the coordinator's server and client.
#include "launcher/coordinator/grpc_util.h"

#include <grpc/support/log.h>

#include <cstdio>
#include <cstdlib>

#include "launcher/cli_number.h"
#include "launcher/quoted.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "runtime/check.h"
#include "runtime/checkpoint/user_file.h"

namespace lockstep::grpc_util {

bool constant_time_equal(std::string_view given, std::string_view expected) {
  unsigned char diff = given.size() != expected.size();
  for (size_t i = 0; i < expected.size(); ++i) {
    const unsigned char g = i < given.size() ? static_cast<unsigned char>(given[i]) : 0;
    diff |= g ^ static_cast<unsigned char>(expected[i]);
  }
  return diff == 0;
}

const char* code_name(grpc::StatusCode c) {
  switch (c) {
    case grpc::StatusCode::OK: return "OK";
    case grpc::StatusCode::CANCELLED: return "CANCELLED";
    case grpc::StatusCode::UNKNOWN: return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT: return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED: return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND: return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS: return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED: return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED: return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION: return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED: return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE: return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED: return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL: return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE: return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS: return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED: return "UNAUTHENTICATED";
    default: return "UNKNOWN_CODE";
  }
}

std::string status_text(const grpc::Status& s) {
  return std::string(code_name(s.error_code())) + ": " + s.error_message();
}

std::string read_file(const std::string& path, const std::string& what) {
  std::error_code ec;  // an ifstream opens a directory and reads it as empty
  LOCKSTEP_FAIL_IF(std::filesystem::is_directory(path, ec)) << what << " " << path << " is a directory";
  checkpoint_io::check_input_file(what + " ", path);  // a FIFO would block the open
  std::ifstream in(path, std::ios::binary);
  LOCKSTEP_FAIL_IF(!in) << "cannot read " << what << " " << path;
  std::ostringstream s;
  s << in.rdbuf();
  LOCKSTEP_FAIL_IF(s.str().empty()) << what << " " << path << " is empty";
  return s.str();
}

namespace {

void drop_or_print(gpr_log_func_args* args) {
  static const bool print = [] {
    const char* v = std::getenv("LOCKSTEP_GRPC_LOG");
    return v && std::string(v) == "1";
  }();
  if (print) std::fprintf(stderr, "grpc: %s:%d: %s\n", args->file, args->line, args->message);
}

}  // namespace

void quiet_grpc_logs() { gpr_set_log_function(&drop_or_print); }

void check_address(const std::string& address, const std::string& what) {
  if (address.rfind("unix:", 0) == 0) {
    LOCKSTEP_FAIL_IF(address.size() == 5) << what << " " << quoted(address) << ": no socket path";
    return;
  }
  const size_t colon = address.rfind(':');
  LOCKSTEP_FAIL_IF(colon == std::string::npos || colon == 0)
      << what << " " << quoted(address) << ": expected HOST:PORT";
  cli::whole_number(what + " " + address + ": the port", address.substr(colon + 1), 1, 65535);
}

}  // namespace lockstep::grpc_util
