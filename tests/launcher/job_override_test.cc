// --set FIELD=VALUE (launcher/job_override.h): each override gives the job that the job file with
// that line edited parses to (protobuf's own parser on the edited text is the reference), nested
// fields, enums by name, bools, strings, repeated fields (replaced) and list elements included;
// every bad override is one line naming --set, the argument and why; the job checks then apply to
// the value set and name the --set.
#include <gtest/gtest.h>

#include <google/protobuf/text_format.h>
#include <google/protobuf/util/message_differencer.h>

#include <string>
#include <vector>

#include "launcher/job_file.h"
#include "launcher/job_override.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

const char* kJob = R"(name: "j"
model {
  input_shape: [784]
  layers { linear { in_features: 784 out_features: 32 } }
  layers { dropout { p: 0.1 } }
  layers { linear { in_features: 32 out_features: 10 } }
}
data { dir: "/data" }
optimizer { lr: 0.05 sgd { momentum: 0.9 } }
epochs: 3
batch_size: 64
distributed { sync_batchnorm: false dropout_keying: PER_RANK }
)";

proto::JobSpec parse(const std::string& text) {
  proto::JobSpec job;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &job)) << text;
  return job;
}

// The job file with `from` replaced by `to` (the line a user would edit instead of --set).
proto::JobSpec edited(const std::string& from, const std::string& to) {
  std::string text = kJob;
  const auto at = text.find(from);
  EXPECT_NE(at, std::string::npos) << from;
  return parse(text.replace(at, from.size(), to));
}

void expect_set(const std::vector<std::string>& sets, const proto::JobSpec& want) {
  proto::JobSpec job = parse(kJob);
  apply_overrides(job, sets);
  std::string diff;
  google::protobuf::util::MessageDifferencer d;
  d.ReportDifferencesToString(&diff);
  EXPECT_TRUE(d.Compare(want, job)) << "--set " << sets.front() << ": " << diff;
}

std::string error_of(const std::vector<std::string>& sets) {
  proto::JobSpec job = parse(kJob);
  try {
    apply_overrides(job, sets);
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    return m;
  }
  ADD_FAILURE() << "--set " << sets.front() << " accepted";
  return "";
}

TEST(JobOverride, SetsWhatTheEditedJobFileWouldHold) {
  expect_set({"optimizer.lr=0.1"}, edited("lr: 0.05", "lr: 0.1"));
  expect_set({"optimizer.sgd.momentum=0"}, edited("momentum: 0.9", "momentum: 0"));
  expect_set({"epochs=7"}, edited("epochs: 3", "epochs: 7"));
  expect_set({"distributed.sync_batchnorm=true"}, edited("sync_batchnorm: false", "sync_batchnorm: true"));
  expect_set({"distributed.dropout_keying=PER_SAMPLE"}, edited("PER_RANK", "PER_SAMPLE"));
  expect_set({"data.dir=/other dir/with \"quotes\""}, edited("dir: \"/data\"", "dir: \"/other dir/with \\\"quotes\\\"\""));
  // Quoted as in the job file: the quotes delimit, they are not part of the value.
  expect_set({"data.dir=\"/quoted/dir\""}, edited("dir: \"/data\"", "dir: \"/quoted/dir\""));
  expect_set({"data.dir=\"a \\\"b\\\"\""}, edited("dir: \"/data\"", "dir: \"a \\\"b\\\"\""));
  expect_set({"model.layers[1].dropout.p=0.5"}, edited("p: 0.1", "p: 0.5"));
  expect_set({"model.layers[1]=dropout { p: 0.25 }"}, edited("dropout { p: 0.1 }", "dropout { p: 0.25 }"));
  // A message replaced whole: the oneof moves from sgd to adamw.
  expect_set({"optimizer.adamw={beta1: 0.8}"}, edited("sgd { momentum: 0.9 }", "adamw { beta1: 0.8 }"));
  expect_set({"optimizer.sgd={}"}, edited("sgd { momentum: 0.9 }", "sgd { }"));
  // Repeated fields are replaced, not appended to.
  expect_set({"model.input_shape=[1, 28, 28]"}, edited("input_shape: [784]", "input_shape: [1, 28, 28]"));
  expect_set({"model.input_shape=1,28,28"}, edited("input_shape: [784]", "input_shape: [1, 28, 28]"));
  expect_set({"model.input_shape=[]"}, edited("input_shape: [784]", ""));
  expect_set({"eval.top_k=1,5"}, edited("epochs: 3", "epochs: 3 eval { top_k: [1, 5] }"));
  // A field the file does not set; the later of two --set wins.
  expect_set({"seed=9"}, edited("epochs: 3", "epochs: 3 seed: 9"));
  expect_set({"epochs=5", "epochs=6"}, edited("epochs: 3", "epochs: 6"));
}

TEST(JobOverride, BadOverridesNameTheArgumentAndWhy) {
  EXPECT_EQ(error_of({"optimizer.lrr=0.1"}),
            "--set optimizer.lrr=0.1: optimizer has no field lrr (known: lr, weight_decay, sgd, adamw, adam, rmsprop, lars, lamb)");
  EXPECT_EQ(error_of({"epoch=3"}).rfind("--set epoch=3: the job has no field epoch (known: name, model, data,", 0), 0u)
      << error_of({"epoch=3"});
  EXPECT_EQ(error_of({"batch_size=abc"}), "--set batch_size=abc: Expected integer, got: abc");
  EXPECT_EQ(error_of({"optimizer.lr=fast"}), "--set optimizer.lr=fast: Expected double, got: fast");
  EXPECT_EQ(error_of({"precision=FP16"}), "--set precision=FP16: precision: unknown value FP16 (known: FP32, BF16)");
  EXPECT_EQ(error_of({"distributed.sync_batchnorm=maybe"}).rfind("--set distributed.sync_batchnorm=maybe: ", 0), 0u);
  EXPECT_EQ(error_of({"optimizer.lr"}), "--set optimizer.lr: expected FIELD=VALUE, e.g. --set optimizer.lr=0.1");
  EXPECT_EQ(error_of({"epochs.x=1"}), "--set epochs.x=1: epochs is not a message (int64); epochs.x names nothing");
  EXPECT_EQ(error_of({"model.layers.linear.in_features=3"}),
            "--set model.layers.linear.in_features=3: model.layers is a list; give an index, e.g. model.layers[0].linear");
  EXPECT_EQ(error_of({"model.layers[3].dropout.p=0.5"}),
            "--set model.layers[3].dropout.p=0.5: model.layers[3] does not exist (model.layers has 3 elements)");
  // A path into another member of a oneof would switch a layer's kind or the rule by the way.
  EXPECT_EQ(error_of({"model.layers[0].dropout.p=0"}),
            "--set model.layers[0].dropout.p=0: model.layers[0] holds linear, not dropout; to replace it, set the "
            "whole kind: --set model.layers[0].dropout={...}");
  EXPECT_EQ(error_of({"optimizer.adam.beta1=0.8"}),
            "--set optimizer.adam.beta1=0.8: optimizer holds sgd, not adam; to replace it, set the whole rule: --set "
            "optimizer.adam={...}");
  EXPECT_EQ(error_of({"optimizer[0].lr=1"}), "--set optimizer[0].lr=1: optimizer is not a list of messages; it takes no [index]");
  EXPECT_EQ(error_of({"epochs=5 seed: 3"}), "--set epochs=5 seed: 3: \"5 seed: 3\" is not one value of epochs");
  EXPECT_EQ(error_of({"epochs=5\nseed: 3"}), "--set \"epochs=5\\x0aseed: 3\": \"5\\x0aseed: 3\" is not one value of epochs");
}

TEST(JobOverride, JobChecksApplyToTheValueAndNameTheSet) {
  proto::JobSpec job = parse(kJob);
  const std::vector<std::string> sets{"epochs=4", "optimizer.lr=-1"};
  apply_overrides(job, sets);
  try {
    check_with_overrides(sets, [&] { validate_job(job, "job.textproto"); });
    FAIL() << "lr -1 accepted";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m.rfind("job.textproto: optimizer.lr: ", 0), 0u) << m;
    EXPECT_NE(m.find("got -1"), std::string::npos) << m;
    EXPECT_EQ(m.substr(m.size() - std::string(" (set by --set optimizer.lr=-1)").size()), " (set by --set optimizer.lr=-1)") << m;
  }
  // A list of changed fields (the resume check's) names the --set too; other messages are left alone.
  EXPECT_EQ(blame_override("checkpoint d: the job changed since this checkpoint: batch_size, optimizer.lr; ...",
                           {"optimizer.lr=0.2"}),
            "checkpoint d: the job changed since this checkpoint: batch_size, optimizer.lr; ... (set by --set optimizer.lr=0.2)");
  EXPECT_EQ(blame_override("job: optimizer.lr_min: bad", {"optimizer.lr=0.2"}), "job: optimizer.lr_min: bad");
}

}  // namespace
}  // namespace lockstep
