// Graph job files (layers/graph.h through launcher/job_builder.cc): the shipped
// launcher/jobs/fmnist-resnet8-graph.textproto builds the same network as the C++ reference model
// fmnist-resnet8 (layers/resnet.h), defined independently: the same state_dict keys in the same
// order, the same initial weights from the same seed, and bit-identical train-mode logits and
// gradients. A branch-and-concat graph trains. (Refusals: tests/launcher/bad_jobs/graph_*.)
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <cmath>

#include "launcher/job_builder.h"
#include "launcher/job_file.h"
#include "layers/init.h"
#include "layers/reference_models.h"
#include "runtime/autograd.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

Tensor ramp(const Shape& s) {
  Tensor t = Tensor::empty(s);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>((i * 37) % 101) / 50.f - 1.f;
  return t;
}

TEST(GraphJob, ResNet8GraphIsTheReferenceResNet8) {
  const proto::JobSpec job = load_job(std::string(LOCKSTEP_SOURCE_DIR) + "/launcher/jobs/fmnist-resnet8-graph.textproto");
  BuiltModel graph = build_model(job);
  auto ref = make_reference_model("fmnist-resnet8");
  init_parameters(*ref, job.seed());
  auto a = graph.model->state_dict(), b = ref->state_dict();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].first, b[i].first) << "state_dict entry " << i;
    for (int64_t k = 0; k < b[i].second->numel(); ++k)
      ASSERT_EQ((*a[i].second)[k], (*b[i].second)[k]) << a[i].first << " element " << k;
  }
  EXPECT_EQ(graph.model->output_shape({4, 1, 28, 28}), (Shape{4, 10}));

  const Tensor x = ramp({4, 1, 28, 28});
  Tensor ya = (*graph.model)(x), yb = (*ref)(x);
  ASSERT_EQ(ya.shape(), yb.shape());
  for (int64_t k = 0; k < ya.numel(); ++k) ASSERT_EQ(ya[k], yb[k]) << "logit " << k;
  const Tensor dy = ramp({4, 10});
  backward(ya, dy);
  backward(yb, dy);
  auto pa = graph.model->named_parameters(), pb = ref->named_parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    for (int64_t k = 0; k < pb[i].second->grad.numel(); ++k)
      ASSERT_EQ(pa[i].second->grad[k], pb[i].second->grad[k]) << "gradient of " << pa[i].first << " element " << k;
}

TEST(GraphJob, BranchesMergedByConcatTrain) {
  proto::JobSpec job;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(R"(
    name: "inception-ish"
    model {
      input_shape: [1, 28, 28]
      layers { name: "a" inputs: "input" conv2d { in_channels: 1 out_channels: 3 kernel_size: 3 padding: 1 } }
      layers { name: "b" inputs: "input" conv2d { in_channels: 1 out_channels: 5 kernel_size: 5 padding: 2 } }
      layers { name: "cat" inputs: "a" inputs: "b" concat {} }
      layers { name: "act" gelu {} }
      layers { name: "pool" adaptive_avg_pool2d { output_size: 1 } }
      layers { name: "flat" flatten {} }
      layers { name: "fc" linear { in_features: 8 out_features: 10 } }
    }
    data { dir: "/usr/share/datasets/fashion-mnist" }
    optimizer { lr: 0.1 sgd { momentum: 0.9 } }
    seed: 4 epochs: 1 batch_size: 8)", &job));
  validate_job(job, "inline");
  BuiltModel m = build_model(job);
  Tensor y = (*m.model)(ramp({2, 1, 28, 28}));
  EXPECT_EQ(y.shape(), (Shape{2, 10}));
  backward(y, ramp({2, 10}));
  // Both branches get gradients through the concatenation.
  for (auto& [name, p] : m.model->named_parameters()) {
    double s = 0;
    for (float v : p->grad.span()) s += std::fabs(v);
    EXPECT_GT(s, 0.0) << name;
  }
}

}  // namespace
}  // namespace lockstep
