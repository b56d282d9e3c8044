// coordinator.json and result.json in the run directory (see run_files.h).
#include "launcher/coordinator/run_files.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/util/json_util.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <nlohmann/json.hpp>

#include "launcher/coordinator/grpc_util.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

using google::protobuf::FieldDescriptor;

nlohmann::ordered_json to_json(const google::protobuf::Message& m);

nlohmann::ordered_json field_json(const google::protobuf::Message& m, const FieldDescriptor* f, int i) {
  const auto* r = m.GetReflection();
  const bool rep = f->is_repeated();
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: return rep ? r->GetRepeatedInt32(m, f, i) : r->GetInt32(m, f);
    case FieldDescriptor::CPPTYPE_INT64: return rep ? r->GetRepeatedInt64(m, f, i) : r->GetInt64(m, f);
    case FieldDescriptor::CPPTYPE_UINT32: return rep ? r->GetRepeatedUInt32(m, f, i) : r->GetUInt32(m, f);
    case FieldDescriptor::CPPTYPE_UINT64: return rep ? r->GetRepeatedUInt64(m, f, i) : r->GetUInt64(m, f);
    case FieldDescriptor::CPPTYPE_DOUBLE: return rep ? r->GetRepeatedDouble(m, f, i) : r->GetDouble(m, f);
    case FieldDescriptor::CPPTYPE_FLOAT: return rep ? r->GetRepeatedFloat(m, f, i) : r->GetFloat(m, f);
    case FieldDescriptor::CPPTYPE_BOOL: return rep ? r->GetRepeatedBool(m, f, i) : r->GetBool(m, f);
    case FieldDescriptor::CPPTYPE_STRING: return rep ? r->GetRepeatedString(m, f, i) : r->GetString(m, f);
    case FieldDescriptor::CPPTYPE_ENUM: return (rep ? r->GetRepeatedEnum(m, f, i) : r->GetEnum(m, f))->name();
    case FieldDescriptor::CPPTYPE_MESSAGE: return to_json(rep ? r->GetRepeatedMessage(m, f, i) : r->GetMessage(m, f));
  }
  return nullptr;
}

nlohmann::ordered_json to_json(const google::protobuf::Message& m) {
  nlohmann::ordered_json out = nlohmann::ordered_json::object();
  const auto* d = m.GetDescriptor();
  for (int k = 0; k < d->field_count(); ++k) {
    const FieldDescriptor* f = d->field(k);
    if (!f->is_repeated()) {
      out[f->name()] = field_json(m, f, 0);
      continue;
    }
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (int i = 0; i < m.GetReflection()->FieldSize(m, f); ++i) a.push_back(field_json(m, f, i));
    out[f->name()] = std::move(a);
  }
  return out;
}

std::string this_host() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return host;
}

}  // namespace

std::string message_json(const google::protobuf::Message& m) { return to_json(m).dump(2) + "\n"; }

proto::CoordinatorAddress address_record(const std::string& address, bool tls, const std::string& job,
                                         const std::string& token_file) {
  proto::CoordinatorAddress a;
  a.set_address(address);
  a.set_tls(tls);
  a.set_job(job);
  a.set_host(this_host());
  a.set_pid(::getpid());
  a.set_start_time_unix_s(
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  a.set_token_file(token_file);
  return a;
}

proto::CoordinatorAddress read_address_file(const std::string& run_dir) {
  const std::string path = run_dir + "/" + kAddressFile;
  struct stat st {};
  LOCKSTEP_FAIL_IF(::stat(path.c_str(), &st) != 0)
      << "--run-dir " << run_dir << ": no " << kAddressFile << " there (" << std::strerror(errno)
      << "): no coordinator serves that run directory now; a finished job leaves " << kResultFile;
  const std::string text = grpc_util::read_file(path, "coordinator address file");
  proto::CoordinatorAddress a;
  google::protobuf::util::JsonParseOptions opts;
  opts.ignore_unknown_fields = true;  // a newer lockstep may add fields
  const auto status = google::protobuf::util::JsonStringToMessage(text, &a, opts);
  LOCKSTEP_FAIL_IF(!status.ok()) << path << ": not a coordinator address (" << status.message().as_string() << ")";
  LOCKSTEP_FAIL_IF(a.address().empty()) << path << ": address is empty";
  grpc_util::check_address(a.address(), path + ": address");
  const bool gone = a.pid() > 0 && ::kill(static_cast<pid_t>(a.pid()), 0) != 0 && errno == ESRCH;
  LOCKSTEP_FAIL_IF(a.host() == this_host() && gone)
      << path << " is stale: its coordinator (pid " << a.pid() << " on " << a.host()
      << ") is no longer running; the launcher ended without removing it (killed?)";
  return a;
}

void write_file_atomically(const std::string& path, const std::string& body, unsigned mode) {
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  LOCKSTEP_FAIL_IF(fd < 0) << "cannot write " << tmp << ": " << std::strerror(errno);
  const bool ok = ::fchmod(fd, mode) == 0 &&
                  ::write(fd, body.data(), body.size()) == static_cast<ssize_t>(body.size()) && ::fsync(fd) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    const int why = ok ? errno : err;
    ::unlink(tmp.c_str());
    throw Error("cannot write " + path + ": " + std::strerror(why));
  }
}

void CoordinatorFiles::started(const std::string& run_dir, const proto::CoordinatorAddress& a) {
  ::unlink((run_dir + "/" + kResultFile).c_str());  // a previous run's: not this one's result
  write_file_atomically(run_dir + "/" + kAddressFile, message_json(a), 0644);
  run_dir_ = run_dir;
}

void CoordinatorFiles::ended(const proto::JobResult& r) const {
  if (!run_dir_.empty()) write_file_atomically(run_dir_ + "/" + kResultFile, message_json(r), 0644);
}

CoordinatorFiles::~CoordinatorFiles() {
  if (!run_dir_.empty()) ::unlink((run_dir_ + "/" + kAddressFile).c_str());
}

}  // namespace lockstep
