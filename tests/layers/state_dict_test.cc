// The reference models' state_dict names and shapes are exactly PyTorch's for the same
// nn.Sequential, so checkpoints and golden fixtures exchange weights by name.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "layers/reference_models.h"
#include "runtime/check.h"

namespace lockstep {
namespace {

using Entries = std::vector<std::pair<std::string, Shape>>;

Entries entries(Module& m) {
  Entries out;
  for (auto& [name, t] : m.state_dict()) out.emplace_back(name, t->shape());
  return out;
}

// Printed by tests/golden/gen_layers.py from torch.nn.Sequential(...).state_dict() (PyTorch 1.13).
TEST(StateDict, FmnistMlpMatchesPyTorch) {
  const Entries expected = {
      {"0.weight", {512, 784}}, {"0.bias", {512}},
      {"1.weight", {512}},      {"1.bias", {512}},
      {"1.running_mean", {512}}, {"1.running_var", {512}},
      {"1.num_batches_tracked", {}},
      {"4.weight", {256, 512}}, {"4.bias", {256}},
      {"5.weight", {256}},      {"5.bias", {256}},
      {"5.running_mean", {256}}, {"5.running_var", {256}},
      {"5.num_batches_tracked", {}},
      {"8.weight", {10, 256}},  {"8.bias", {10}},
  };
  auto m = make_reference_model("fmnist-mlp");
  EXPECT_EQ(entries(*m), expected);
}

// Printed by tests/golden/gen_layers.py from torch.nn.Sequential(...).state_dict() (PyTorch 1.13).
TEST(StateDict, FmnistCnnMatchesPyTorch) {
  const Entries expected = {
      {"0.weight", {32, 1, 3, 3}},  {"0.bias", {32}},
      {"1.weight", {32}},           {"1.bias", {32}},
      {"1.running_mean", {32}},     {"1.running_var", {32}},
      {"1.num_batches_tracked", {}},
      {"4.weight", {64, 32, 3, 3}}, {"4.bias", {64}},
      {"5.weight", {64}},           {"5.bias", {64}},
      {"5.running_mean", {64}},     {"5.running_var", {64}},
      {"5.num_batches_tracked", {}},
      {"10.weight", {128, 3136}},   {"10.bias", {128}},
      {"11.weight", {128}},         {"11.bias", {128}},
      {"11.running_mean", {128}},   {"11.running_var", {128}},
      {"11.num_batches_tracked", {}},
      {"14.weight", {10, 128}},     {"14.bias", {10}},
  };
  auto m = make_reference_model("fmnist-cnn");
  EXPECT_EQ(entries(*m), expected);
}

TEST(StateDict, ReferenceModelsTakeTheirInputShapes) {
  EXPECT_EQ(reference_model_input("fmnist-mlp"), (Shape{784}));
  EXPECT_EQ(reference_model_input("fmnist-cnn"), (Shape{1, 28, 28}));
  EXPECT_EQ(make_reference_model("fmnist-mlp")->output_shape({2, 784}), (Shape{2, 10}));
  EXPECT_EQ(make_reference_model("fmnist-cnn")->output_shape({2, 1, 28, 28}), (Shape{2, 10}));
  EXPECT_THROW(make_reference_model("fmnist-cnn")->output_shape({2, 784}), Error);
  EXPECT_THROW(make_reference_model("resnet"), Error);
}

}  // namespace
}  // namespace lockstep
