// Job file parsing (google::protobuf::TextFormat) and validation.
#include "launcher/job_file.h"

#include <google/protobuf/io/tokenizer.h>
#include <google/protobuf/text_format.h>

#include <fstream>
#include <sstream>

#include "layers/reference_models.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

class Collector : public google::protobuf::io::ErrorCollector {
 public:
  explicit Collector(std::string path) : path_(std::move(path)) {}
  void AddError(int line, int column, const std::string& message) override {
    if (first_.empty())
      first_ = path_ + ":" + std::to_string(line + 1) + ":" + std::to_string(column + 1) + ": " + message;
  }
  void AddWarning(int, int, const std::string&) override {}
  const std::string& first() const { return first_; }

 private:
  std::string path_;
  std::string first_;
};

}  // namespace

proto::JobSpec load_job(const std::string& path) {
  std::ifstream in(path);
  LOCKSTEP_FAIL_IF(!in) << "cannot open job file " << path;
  std::stringstream text;
  text << in.rdbuf();
  proto::JobSpec job;
  Collector errors(path);
  google::protobuf::TextFormat::Parser parser;
  parser.RecordErrorsTo(&errors);
  LOCKSTEP_FAIL_IF(!parser.ParseFromString(text.str(), &job))
      << (errors.first().empty() ? path + ": cannot parse job file" : errors.first());
  validate_job(job, path);
  return job;
}

void validate_job(const proto::JobSpec& job, const std::string& path) {
  auto fail = [&](const std::string& field, const std::string& why) {
    LOCKSTEP_FAIL_IF(true) << path << ": " << field << ": " << why;
  };
  const auto& m = job.model();
  if (m.reference().empty() && m.layers_size() == 0) fail("model", "set model.reference or model.layers");
  if (!m.reference().empty() && m.layers_size() > 0)
    fail("model", "set either model.reference or model.layers, not both");
  if (!m.reference().empty()) {
    const auto names = reference_model_names();
    if (std::find(names.begin(), names.end(), m.reference()) == names.end()) {
      std::string known;
      for (const auto& n : names) known += (known.empty() ? "" : ", ") + n;
      fail("model.reference", "unknown model \"" + m.reference() + "\" (known: " + known + ")");
    }
  }
  if (m.layers_size() > 0 && m.input_shape_size() == 0)
    fail("model.input_shape", "required with model.layers");
  for (int i = 0; i < m.input_shape_size(); ++i)
    if (m.input_shape(i) <= 0) fail("model.input_shape[" + std::to_string(i) + "]", "must be positive");
  for (int i = 0; i < m.layers_size(); ++i)
    if (m.layers(i).kind_case() == proto::Layer::KIND_NOT_SET)
      fail("model.layers[" + std::to_string(i) + "]", "no layer kind set");
  if (job.data().dir().empty()) fail("data.dir", "required");
  if (job.data().has_std() && job.data().std() <= 0.f) fail("data.std", "must be positive");
  if (job.epochs() <= 0) fail("epochs", "must be positive, got " + std::to_string(job.epochs()));
  if (job.batch_size() <= 0) fail("batch_size", "must be positive, got " + std::to_string(job.batch_size()));
  if (job.eval_batch_size() < 0) fail("eval_batch_size", "must not be negative");
  if (job.threads() < 0) fail("threads", "must not be negative");
  const auto& o = job.optimizer();
  if (!(o.lr() > 0.f)) fail("optimizer.lr", "must be positive");
  if (o.weight_decay() < 0.f) fail("optimizer.weight_decay", "must not be negative");
  if (o.rule_case() == proto::OptimizerSpec::RULE_NOT_SET) fail("optimizer", "set sgd or adamw");
  if (o.has_sgd()) {
    if (o.sgd().momentum() < 0.f) fail("optimizer.sgd.momentum", "must not be negative");
    if (o.sgd().nesterov() && (o.sgd().momentum() <= 0.f || o.sgd().dampening() != 0.f))
      fail("optimizer.sgd.nesterov", "needs momentum > 0 and dampening 0");
  }
  const auto& s = job.schedule();
  if (s.has_step() && s.step().step_size() <= 0) fail("schedule.step.step_size", "must be positive");
  if (s.has_cosine() && s.cosine().t_max() <= 0) fail("schedule.cosine.t_max", "must be positive");
  if (s.warmup_epochs() < 0) fail("schedule.warmup_epochs", "must not be negative");
  const auto& d = job.distributed();
  if (!d.backend().empty() && d.backend() != "mpi" && d.backend() != "self")
    fail("distributed.backend", "unknown backend \"" + d.backend() + "\" (known: mpi, self)");
  if (d.has_bucket_mb() && !(d.bucket_mb() > 0.f)) fail("distributed.bucket_mb", "must be positive");
  if (d.has_collective_timeout_s() && !(d.collective_timeout_s() > 0.f))
    fail("distributed.collective_timeout_s", "must be positive");
}

}  // namespace lockstep
