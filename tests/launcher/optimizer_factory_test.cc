// The optimizer factory (build_optimizer): each OptimizerSpec rule builds its optimizer with the
// job's fields and the rule's defaults where a field is unset, and LARS/LAMB learn from the module
// tree which parameters they do not adapt (biases, BatchNorm and LayerNorm parameters, whatever
// their shape). The range checks on these fields are in the bad-job corpus (bad_jobs/*.textproto).
#include <google/protobuf/text_format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "launcher/job_builder.h"
#include "runtime/optim/adam.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/lamb.h"
#include "runtime/optim/lars.h"
#include "runtime/optim/rmsprop.h"
#include "runtime/optim/sgd.h"

namespace lockstep {
namespace {

// Parameters: conv.weight (3, 2, 3, 3), conv.bias (3), BatchNorm2d weight and bias (3),
// LayerNorm([4, 4]) weight and bias (4, 4), then a Linear without bias (5, 48).
constexpr const char* kModel =
    "input_shape: [2, 4, 4] "
    "layers { conv2d { in_channels: 2 out_channels: 3 kernel_size: 3 padding: 1 } } "
    "layers { batch_norm2d { num_features: 3 } } "
    "layers { layer_norm { normalized_shape: [4, 4] } } "
    "layers { flatten {} } "
    "layers { linear { in_features: 48 out_features: 5 bias: false } }";

proto::JobSpec job_with(const std::string& optimizer) {
  proto::JobSpec job;
  const std::string text = std::string("name: \"j\" model { ") + kModel +
                           " } data { dir: \"/data\" } optimizer { " + optimizer + " } epochs: 1 batch_size: 4 seed: 3";
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &job)) << text;
  return job;
}

// The optimizer the factory builds for `optimizer` (the block's text), as T; the model and the
// optimizer live in `model` and `holder`. nullptr when it built another rule.
template <typename T>
const T* built(const std::string& optimizer, BuiltModel& model, std::unique_ptr<Optimizer>& holder) {
  const proto::JobSpec job = job_with(optimizer);
  model = build_model(job);
  holder = build_optimizer(job, *model.model);
  return dynamic_cast<const T*>(holder.get());
}

const std::vector<bool> kExcluded{false, true, true, true, true, true, false};

TEST(OptimizerFactory, ExclusionsFollowTheModuleTreeNotTheShape) {
  BuiltModel m = build_model(job_with("lr: 0.1 sgd {}"));
  ASSERT_EQ(m.model->parameters().size(), kExcluded.size());
  EXPECT_EQ(m.model->parameters()[4]->value.ndim(), 2) << "LayerNorm([4, 4]) weight is 2-D";
  EXPECT_EQ(layer_adaptation_exclusions(*m.model), kExcluded);
}

TEST(OptimizerFactory, LarsAndLambTakeTheirFieldsAndTheModelsExclusions) {
  BuiltModel m;
  std::unique_ptr<Optimizer> o;
  const Lars* lars = built<Lars>("lr: 2.5 weight_decay: 0.0005 lars { momentum: 0.9 trust_coefficient: 0.02 }", m, o);
  ASSERT_NE(lars, nullptr);
  EXPECT_FLOAT_EQ(lars->options().lr, 2.5f);
  EXPECT_FLOAT_EQ(lars->options().momentum, 0.9f);
  EXPECT_FLOAT_EQ(lars->options().weight_decay, 0.0005f);
  EXPECT_FLOAT_EQ(lars->options().trust_coefficient, 0.02f);
  EXPECT_EQ(lars->excluded(), kExcluded);
  lars = built<Lars>("lr: 1 lars {}", m, o);
  ASSERT_NE(lars, nullptr);
  EXPECT_FLOAT_EQ(lars->options().trust_coefficient, 1e-3f);  // the paper's eta

  const Lamb* lamb = built<Lamb>("lr: 0.002 weight_decay: 0.01 lamb { beta1: 0.8 }", m, o);
  ASSERT_NE(lamb, nullptr);
  EXPECT_FLOAT_EQ(lamb->options().beta1, 0.8f);
  EXPECT_FLOAT_EQ(lamb->options().beta2, 0.999f);
  EXPECT_FLOAT_EQ(lamb->options().eps, 1e-6f);
  EXPECT_FLOAT_EQ(lamb->options().weight_decay, 0.01f);
  EXPECT_EQ(lamb->excluded(), kExcluded);
}

TEST(OptimizerFactory, AdamRmspropAndAdamWTakeTheirFieldsWithPyTorchsDefaults) {
  BuiltModel m;
  std::unique_ptr<Optimizer> o;
  const Adam* adam = built<Adam>("lr: 0.003 weight_decay: 0.1 adam { amsgrad: true eps: 1e-6 }", m, o);
  ASSERT_NE(adam, nullptr);
  EXPECT_TRUE(adam->options().amsgrad);
  EXPECT_FLOAT_EQ(adam->options().beta1, 0.9f);
  EXPECT_FLOAT_EQ(adam->options().beta2, 0.999f);
  EXPECT_FLOAT_EQ(adam->options().eps, 1e-6f);
  EXPECT_FLOAT_EQ(adam->options().weight_decay, 0.1f);

  const Rmsprop* r = built<Rmsprop>("lr: 0.01 rmsprop { momentum: 0.5 centered: true }", m, o);
  ASSERT_NE(r, nullptr);
  EXPECT_FLOAT_EQ(r->options().alpha, 0.99f);
  EXPECT_FLOAT_EQ(r->options().eps, 1e-8f);
  EXPECT_FLOAT_EQ(r->options().momentum, 0.5f);
  EXPECT_TRUE(r->options().centered);
  r = built<Rmsprop>("lr: 0.01 rmsprop { alpha: 0.9 }", m, o);
  ASSERT_NE(r, nullptr);
  EXPECT_FLOAT_EQ(r->options().alpha, 0.9f);
  EXPECT_FALSE(r->options().centered);

  const AdamW* adamw = built<AdamW>("lr: 0.01 adamw { amsgrad: true }", m, o);
  ASSERT_NE(adamw, nullptr);
  EXPECT_TRUE(adamw->options().amsgrad);
  EXPECT_NE(built<Sgd>("lr: 0.01 sgd { momentum: 0.9 }", m, o), nullptr);
}

}  // namespace
}  // namespace lockstep
