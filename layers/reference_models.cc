// Builds the reference models layer by layer.
#include "layers/reference_models.h"

#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/linear.h"
#include "layers/max_pool2d.h"
#include "layers/relu.h"
#include "layers/resnet.h"
#include "runtime/check.h"

namespace lockstep {

std::vector<std::string> reference_model_names() {
  return {"fmnist-mlp", "fmnist-cnn", "fmnist-resnet8", "fmnist-resnet20"};
}

Shape reference_model_input(const std::string& name) {
  return name == "fmnist-mlp" ? Shape{784} : Shape{1, 28, 28};
}

std::unique_ptr<Module> make_reference_model(const std::string& name, ModelOptions o) {
  if (name == "fmnist-resnet8" || name == "fmnist-resnet20")
    return std::make_unique<ResNet>(ResNetOptions{.blocks_per_stage = name == "fmnist-resnet8" ? 1 : 3});
  auto m = std::make_unique<Sequential>();
  auto bn = [](int64_t c) { return BatchNormOptions{.num_features = c}; };
  if (name == "fmnist-mlp") {
    m->emplace<Linear>(784, 512).emplace<BatchNorm1d>(bn(512)).emplace<ReLU>();
    m->emplace<Dropout>(0.2f * o.dropout_scale);
    m->emplace<Linear>(512, 256).emplace<BatchNorm1d>(bn(256)).emplace<ReLU>();
    m->emplace<Dropout>(0.2f * o.dropout_scale);
    m->emplace<Linear>(256, 10);
  } else if (name == "fmnist-cnn") {
    m->emplace<Conv2d>(Conv2dOptions{.in_channels = 1, .out_channels = 32, .kernel = 3, .padding = 1});
    m->emplace<BatchNorm2d>(bn(32)).emplace<ReLU>().emplace<MaxPool2d>(2);
    m->emplace<Conv2d>(Conv2dOptions{.in_channels = 32, .out_channels = 64, .kernel = 3, .padding = 1});
    m->emplace<BatchNorm2d>(bn(64)).emplace<ReLU>().emplace<MaxPool2d>(2);
    m->emplace<Dropout>(0.25f * o.dropout_scale).emplace<Flatten>();
    m->emplace<Linear>(3136, 128).emplace<BatchNorm1d>(bn(128)).emplace<ReLU>();
    m->emplace<Dropout>(0.5f * o.dropout_scale).emplace<Linear>(128, 10);
  } else {
    std::string known;
    for (const auto& n : reference_model_names()) known += (known.empty() ? "" : ", ") + n;
    LOCKSTEP_FAIL_IF(true) << "unknown model \"" << name << "\" (known: " << known << ")";
  }
  return m;
}

}  // namespace lockstep
