// Every numeric field of proto/job.proto has an allowed range: walking the JobSpec descriptor, each
// int32/int64/float/double field (repeated ones included, at any depth) set far out of range, to
// NaN or to an infinity must be refused with one line naming its full field path. A field added to
// job.proto without a range check fails here. (seed, a uint64, takes every value.)
#include <gtest/gtest.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/message.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "launcher/job_file.h"
#include "runtime/check.h"

namespace {

using google::protobuf::FieldDescriptor;
using google::protobuf::Message;

using Path = std::vector<const FieldDescriptor*>;

bool numeric(const FieldDescriptor* f) {
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32:
    case FieldDescriptor::CPPTYPE_INT64:
    case FieldDescriptor::CPPTYPE_UINT32:
    case FieldDescriptor::CPPTYPE_FLOAT:
    case FieldDescriptor::CPPTYPE_DOUBLE:
      return true;
    default:
      return false;
  }
}

void collect(const google::protobuf::Descriptor* d, Path prefix, std::vector<Path>& out) {
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    Path p = prefix;
    p.push_back(f);
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_MESSAGE) collect(f->message_type(), p, out);
    else if (numeric(f)) out.push_back(p);
  }
}

// "model.layers[0].linear.in_features"
std::string name_of(const Path& p) {
  std::string s;
  for (const FieldDescriptor* f : p) s += (s.empty() ? "" : ".") + f->name() + (f->is_repeated() ? "[0]" : "");
  return s;
}

// A message created on the way gets valid sizes: 1 for every integer, 0.5 for every plain float
// (optional floats keep their defaults), so only the field under test is out of range.
void fill(Message* m) {
  const auto* d = m->GetDescriptor();
  const auto* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const FieldDescriptor* f = d->field(i);
    if (f->is_repeated()) continue;
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT64) r->SetInt64(m, f, 1);
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_INT32) r->SetInt32(m, f, 1);
    if (f->cpp_type() == FieldDescriptor::CPPTYPE_FLOAT && !f->has_presence()) r->SetFloat(m, f, 0.5f);
  }
}

// A valid job that runs on the shipped MLP; the path's messages are created on the way (a oneof
// member created this way becomes the one set), then the leaf gets `v`.
lockstep::proto::JobSpec job_with(const Path& p, double v) {
  lockstep::proto::JobSpec job =
      lockstep::load_job(std::string(LOCKSTEP_SOURCE_DIR) + "/launcher/jobs/fmnist-mlp.textproto");
  if (p[0]->name() == "model") {  // a layer list instead of the reference model
    job.mutable_model()->clear_reference();
    job.mutable_model()->add_input_shape(784);
    if (p.size() > 1 && p[1]->name() != "layers") job.mutable_model()->add_layers()->mutable_relu();
  }
  Message* m = &job;
  for (size_t i = 0; i + 1 < p.size(); ++i) {
    const auto* r = m->GetReflection();
    const bool fresh = p[i]->is_repeated() || !r->HasField(*m, p[i]);
    m = p[i]->is_repeated() ? r->AddMessage(m, p[i]) : r->MutableMessage(m, p[i]);
    if (fresh) fill(m);
  }
  const FieldDescriptor* f = p.back();
  const auto* r = m->GetReflection();
  if (f->is_repeated()) r->ClearField(m, f);
  auto clamp = [](double x, double lo, double hi) { return std::isnan(x) ? 0 : x < lo ? lo : x > hi ? hi : x; };
  switch (f->cpp_type()) {
    case FieldDescriptor::CPPTYPE_INT32: {
      const auto x = static_cast<int32_t>(clamp(v, INT32_MIN, INT32_MAX));
      f->is_repeated() ? r->AddInt32(m, f, x) : r->SetInt32(m, f, x);
      break;
    }
    case FieldDescriptor::CPPTYPE_INT64: {
      const auto x = static_cast<int64_t>(clamp(v, -9.2e18, 9.2e18));
      f->is_repeated() ? r->AddInt64(m, f, x) : r->SetInt64(m, f, x);
      break;
    }
    case FieldDescriptor::CPPTYPE_UINT32: {
      const auto x = static_cast<uint32_t>(clamp(v, 0, UINT32_MAX));
      f->is_repeated() ? r->AddUInt32(m, f, x) : r->SetUInt32(m, f, x);
      break;
    }
    case FieldDescriptor::CPPTYPE_FLOAT: {
      const auto x = static_cast<float>(v);
      f->is_repeated() ? r->AddFloat(m, f, x) : r->SetFloat(m, f, x);
      break;
    }
    default:
      f->is_repeated() ? r->AddDouble(m, f, v) : r->SetDouble(m, f, v);
  }
  return job;
}

std::string error_of(const lockstep::proto::JobSpec& job) {
  try {
    lockstep::validate_job(job, "j");
  } catch (const lockstep::Error& e) {
    return e.what();
  }
  return "";
}

TEST(FieldRanges, EveryNumericFieldRefusesHugeNanAndInfiniteValues) {
  std::vector<Path> fields;
  collect(lockstep::proto::JobSpec::descriptor(), {}, fields);
  ASSERT_GE(fields.size(), 30u);
  const double inf = std::numeric_limits<double>::infinity();
  for (const Path& p : fields) {
    const std::string name = name_of(p);
    std::vector<double> bad{1e30, -1e30};
    const auto t = p.back()->cpp_type();
    if (t == FieldDescriptor::CPPTYPE_FLOAT || t == FieldDescriptor::CPPTYPE_DOUBLE)
      bad.insert(bad.end(), {std::nan(""), inf, -inf});
    for (double v : bad) {
      const std::string err = error_of(job_with(p, v));
      EXPECT_EQ(err.rfind("j: " + name + ": ", 0), 0u) << name << " = " << v << " gave: \"" << err << "\"";
      EXPECT_EQ(err.find('\n'), std::string::npos) << err;
    }
  }
}

TEST(FieldRanges, MessagesStateTheAllowedRange) {
  lockstep::proto::JobSpec job =
      lockstep::load_job(std::string(LOCKSTEP_SOURCE_DIR) + "/launcher/jobs/fmnist-mlp.textproto");
  job.mutable_distributed()->set_collective_timeout_s(1e30f);
  EXPECT_EQ(error_of(job), "j: distributed.collective_timeout_s: must be at most 604800, got 1e+30 (allowed: [0.01, 604800])");
  job.mutable_distributed()->clear_collective_timeout_s();
  job.mutable_control()->set_heartbeat_interval_s(1e-9f);
  EXPECT_EQ(error_of(job), "j: control.heartbeat_interval_s: must be at least 0.01, got 1e-09 (allowed: [0.01, 3600])");
  job.mutable_control()->clear_heartbeat_interval_s();
  job.mutable_distributed()->set_bucket_mb(1e30f);
  EXPECT_EQ(error_of(job), "j: distributed.bucket_mb: must be at most 65536, got 1e+30 (allowed: [0.001, 65536])");
}

}  // namespace
