// A traced module tree: every Layer records its forward and its backward (the autograd node's
// run) under its qualified name, the state_dict prefix ("layer1.0.conv1"), in backward's reverse
// order; an untraced tree records nothing.
#include <gtest/gtest.h>

#include <algorithm>

#include "layers/reference_models.h"
#include "runtime/autograd.h"
#include "runtime/ops.h"
#include "runtime/trace_recorder.h"
#include "tests/trace_check.h"

namespace lockstep {
namespace {

TEST(TraceSpans, LayersRecordForwardAndBackwardUnderStateDictNames) {
  auto model = make_reference_model("fmnist-resnet8", {});
  TraceRecorder rec({.first_step = 1, .last_step = 1});
  rec.begin_step(1);
  model->set_trace(&rec);
  const Tensor x = Tensor::full({2, 1, 28, 28}, 0.5f);
  Tensor y = model->forward(x);
  backward(y, Tensor::full(y.shape(), 1.f));
  const auto spans = testing::spans_of(nlohmann::json::parse(rec.to_json()));
  auto find = [&](const std::string& name, const std::string& cat) {
    return std::find_if(spans.begin(), spans.end(), [&](const testing::Span& s) { return s.name == name && s.cat == cat; });
  };
  // Every parameter's owner (state_dict key minus ".weight"/".bias") has both spans.
  for (auto& [key, p] : model->named_parameters()) {
    const std::string owner = key.substr(0, key.rfind('.'));
    EXPECT_NE(find(owner, "forward"), spans.end()) << owner;
    EXPECT_NE(find(owner, "backward"), spans.end()) << owner;
  }
  ASSERT_NE(find("layer1.0.conv1", "forward"), spans.end());
  // Backward runs the layers in reverse: fc before conv1; forward the other way round.
  EXPECT_LT(find("conv1", "forward")->ts, find("fc", "forward")->ts);
  EXPECT_LT(find("fc", "backward")->ts, find("conv1", "backward")->ts);
  EXPECT_GT(find("fc", "backward")->ts, find("fc", "forward")->end());

  TraceRecorder off({.first_step = 1, .last_step = 1});
  off.begin_step(1);
  model->set_trace(nullptr);
  Tensor z = model->forward(x);
  backward(z, Tensor::full(z.shape(), 1.f));
  EXPECT_EQ(off.events(TraceLane::kTrain), 0u);
  EXPECT_EQ(rec.events(TraceLane::kTrain), spans.size()) << "detached: nothing more recorded";
}

}  // namespace
}  // namespace lockstep
