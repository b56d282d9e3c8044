// check_resume and the job comparison (google::protobuf::util::MessageDifferencer) behind it.
#include "launcher/resume_check.h"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/message_differencer.h>
#include <zlib.h>

#include <cstdio>
#include <filesystem>

#include "launcher/data_check.h"
#include "launcher/job_builder.h"
#include "layers/dropout.h"
#include "runtime/check.h"
#include "runtime/checkpoint/checkpoint.h"
#include "runtime/checkpoint/checkpoint_validate.h"

namespace lockstep {
namespace {

using google::protobuf::util::MessageDifferencer;

// Collects "a.b[2].c" for every leaf field that differs: a message added or removed as a whole is
// named by the fields set inside it, and a modified message by its modified fields alone.
class PathCollector : public MessageDifferencer::Reporter {
 public:
  using Message = google::protobuf::Message;
  using Path = std::vector<MessageDifferencer::SpecificField>;
  explicit PathCollector(std::vector<std::string>& out) : out_(out) {}
  void ReportAdded(const Message&, const Message& now, const Path& path) override { add_all(now, path); }
  void ReportDeleted(const Message& saved, const Message&, const Path& path) override { add_all(saved, path); }
  void ReportModified(const Message&, const Message&, const Path& path) override {
    if (path.back().field && path.back().field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) out_.push_back(name(path));
  }

 private:
  using FieldDescriptor = google::protobuf::FieldDescriptor;
  static std::string name(const Path& path) {
    std::string s;
    for (const auto& f : path) {
      if (!s.empty()) s += ".";
      s += f.field ? f.field->name() : std::to_string(f.unknown_field_number);
      if (f.field && f.field->is_repeated() && f.index >= 0) s += "[" + std::to_string(f.index) + "]";
    }
    return s;
  }
  // The leaves set under the field path.back() of `parent`. MessageDifferencer reports an added or
  // deleted field with the message that directly holds it (the job itself only for a top-level
  // field) and the full path from the job down to the field.
  void add_all(const Message& parent, const Path& path) {
    const auto& f = path.back();
    if (!f.field || f.field->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
      out_.push_back(name(path));
      return;
    }
    const auto* r = parent.GetReflection();
    leaves(f.field->is_repeated() ? r->GetRepeatedMessage(parent, f.field, f.index) : r->GetMessage(parent, f.field),
           name(path));
  }
  void leaves(const Message& m, const std::string& prefix) {
    std::vector<const FieldDescriptor*> set;
    m.GetReflection()->ListFields(m, &set);
    if (set.empty()) out_.push_back(prefix);  // an empty message (relu {}) is itself the change
    for (const FieldDescriptor* f : set) {
      const std::string at = prefix + "." + f->name();
      if (f->cpp_type() != FieldDescriptor::CPPTYPE_MESSAGE) {
        out_.push_back(at);
      } else if (f->is_repeated()) {
        for (int i = 0; i < m.GetReflection()->FieldSize(m, f); ++i)
          leaves(m.GetReflection()->GetRepeatedMessage(m, f, i), at + "[" + std::to_string(i) + "]");
      } else {
        leaves(m.GetReflection()->GetMessage(m, f), at);
      }
    }
  }
  std::vector<std::string>& out_;
};

std::string joined(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

}  // namespace

proto::JobSpec trajectory_spec(const proto::JobSpec& job) {
  proto::JobSpec j = job;
  j.clear_epochs();
  j.clear_phases();
  j.clear_run_dir();
  j.clear_metrics_file();
  j.clear_name();
  j.clear_eval();  // what an eval reports, not what training does
  j.clear_tensorboard();  // an output beside the metrics file
  j.clear_trace();  // what the timeline records, not what training does
  j.mutable_data()->clear_prefetch_batches();  // where batches are gathered changes none of them
  // A resume takes its weights from the checkpoint, never from init_from (proto/job.proto).
  j.mutable_model()->clear_init_from();
  j.mutable_model()->clear_init_from_fill_num_batches_tracked();
  std::error_code ec;
  const std::filesystem::path canonical = std::filesystem::weakly_canonical(job.data().dir(), ec);
  if (!ec && !job.data().dir().empty()) j.mutable_data()->set_dir(canonical.string());
  return j;
}

std::string job_hash(const proto::JobSpec& job) {
  const proto::JobSpec j = trajectory_spec(job);
  std::string bytes;
  google::protobuf::io::StringOutputStream raw(&bytes);
  {
    google::protobuf::io::CodedOutputStream out(&raw);
    out.SetSerializationDeterministic(true);
    j.SerializeToCodedStream(&out);
  }
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data());
  const uLong crc = crc32(0L, p, static_cast<uInt>(bytes.size()));
  const uLong adler = adler32(1L, p, static_cast<uInt>(bytes.size()));
  char hex[17];
  std::snprintf(hex, sizeof hex, "%08lx%08lx", crc & 0xffffffffUL, adler & 0xffffffffUL);
  return hex;
}

std::vector<std::string> changed_job_fields(const proto::JobSpec& saved, const proto::JobSpec& now) {
  std::vector<std::string> fields;
  {
    PathCollector reporter(fields);
    MessageDifferencer d;
    d.ReportDifferencesTo(&reporter);
    d.Compare(trajectory_spec(saved), trajectory_spec(now));
  }  // the differencer flushes its reports when it goes
  return fields;
}

void check_resume_world_size(const proto::JobSpec& job, const std::string& run_dir, int world_size) {
  const auto found = latest_valid_checkpoint(run_dir, [](const std::string&) {});  // check_resume warns
  if (found) check_world_size(found->second.state.world_size(), world_size, job.batch_size(), found->first);
}

void check_resume(const proto::JobSpec& job, const std::string& run_dir, int world_size) {
  const auto found = latest_valid_checkpoint(run_dir, [](const std::string& w) {
    std::fprintf(stderr, "lockstep: %s\n", w.c_str());
  });
  if (!found) return;
  const auto& [dir, c] = *found;
  if (c.state.has_job()) {
    const std::vector<std::string> changed = changed_job_fields(c.state.job(), job);
    LOCKSTEP_FAIL_IF(!changed.empty())
        << "checkpoint " << dir << ": the job changed since this checkpoint was written: " << joined(changed)
        << "; restore " << (changed.size() > 1 ? "them" : "it") << " or start a new run_dir";
  }
  // A job cut shorter than the run already went: named as the job's field, not the checkpoint's.
  LOCKSTEP_FAIL_IF(c.state.epoch() > job.epochs())
      << "resume: epochs: " << job.epochs() << " is fewer than the " << c.state.epoch() << " epoch"
      << (c.state.epoch() == 1 ? "" : "s") << " checkpoint " << dir << " has already trained; give epochs >= "
      << c.state.epoch() << " to resume it";
  const DataFacts data = check_data(job, "job");
  const int64_t n = data.train.size, b = job.batch_size();
  const bool pad = job.distributed().remainder() == proto::DistributedSpec::PAD;
  BuiltModel built = build_model(job);
  const ResumeLimits limits{.epochs = job.epochs(),
                            .steps_per_epoch = pad ? (n + b - 1) / b : n / b,
                            .accumulate_steps = job.has_accumulate_steps() ? job.accumulate_steps() : 1,
                            .world_size = world_size,
                            .batch_size = b,
                            .rng_consumers = static_cast<int64_t>(dropout_layers(*built.model).size())};
  validate_state(c.state, limits, dir);
  // Names and shapes: copied into a fresh replica, as the workers will.
  copy_tensors(c.model, built.model->state_dict(), "checkpoint " + dir + ": model.pb");
  auto opt = build_optimizer(job, *built.model);
  copy_tensors(c.optimizer, opt->state_tensors(), "checkpoint " + dir + ": optimizer.pb");
}

}  // namespace lockstep
