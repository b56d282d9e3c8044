// ResNet and its BasicBlock: construction (torchvision's names) and forward.
#include "layers/resnet.h"

#include <string>

#include "layers/dropout.h"
#include "runtime/check.h"
#include "runtime/ops.h"

namespace lockstep {
namespace {

BatchNormOptions bn(int64_t c) { return BatchNormOptions{.num_features = c}; }

Conv2dOptions conv3x3(int64_t in, int64_t out, int64_t stride) {
  return Conv2dOptions{.in_channels = in, .out_channels = out, .kernel = 3, .stride = stride, .padding = 1,
                       .bias = false};
}

}  // namespace

BasicBlock::BasicBlock(int64_t in, int64_t out, int64_t stride)
    : conv1_(register_module("conv1", std::make_unique<Conv2d>(conv3x3(in, out, stride)))),
      bn1_(register_module("bn1", std::make_unique<BatchNorm2d>(bn(out)))),
      conv2_(register_module("conv2", std::make_unique<Conv2d>(conv3x3(out, out, 1)))),
      bn2_(register_module("bn2", std::make_unique<BatchNorm2d>(bn(out)))) {
  if (stride != 1 || in != out) {
    auto d = std::make_unique<Sequential>();
    d->emplace<Conv2d>(Conv2dOptions{.in_channels = in, .out_channels = out, .kernel = 1, .stride = stride,
                                     .bias = false});
    d->emplace<BatchNorm2d>(bn(out));
    downsample_ = &register_module("downsample", std::move(d));
  }
}

// relu(bn1(conv1(x))) and relu(y + shortcut) run fused (BatchNorm::forward_relu, add_relu), with
// the values and gradients of the unfused forward.
Tensor BasicBlock::forward(const Tensor& x) {
  Tensor y = bn1_.forward_relu(conv1_(x));
  y = bn2_(conv2_(y));
  return add_relu(y, downsample_ ? (*downsample_)(x) : x);
}

std::string BasicBlock::describe() const {
  return "BasicBlock(" + conv1_.describe() + (downsample_ ? ", projection shortcut)" : ")");
}

Shape BasicBlock::output_shape(const Shape& in) const {
  const Shape main = bn2_.output_shape(conv2_.output_shape(bn1_.output_shape(conv1_.output_shape(in))));
  const Shape shortcut = downsample_ ? downsample_->output_shape(in) : in;
  LOCKSTEP_FAIL_IF(main != shortcut) << describe() << ": the residual branch gives " << shape_str(main)
                                     << " but the shortcut " << shape_str(shortcut);
  return main;
}

ResNet::ResNet(ResNetOptions o)
    : o_(std::move(o)),
      conv1_(register_module("conv1", std::make_unique<Conv2d>(conv3x3(o_.in_channels, o_.widths.at(0), 1)))),
      bn1_(register_module("bn1", std::make_unique<BatchNorm2d>(bn(o_.widths[0])))) {
  LOCKSTEP_FAIL_IF(o_.blocks_per_stage < 1) << "ResNet: blocks_per_stage must be at least 1, got " << o_.blocks_per_stage;
  int64_t in = o_.widths[0];
  for (size_t s = 0; s < o_.widths.size(); ++s) {
    auto stage = std::make_unique<Sequential>();
    for (int64_t b = 0; b < o_.blocks_per_stage; ++b) {
      stage->emplace<BasicBlock>(in, o_.widths[s], b == 0 && s > 0 ? 2 : 1);
      in = o_.widths[s];
    }
    stages_.push_back(&register_module("layer" + std::to_string(s + 1), std::move(stage)));
  }
  avgpool_ = &register_module("avgpool", std::make_unique<AdaptiveAvgPool2d>(1));
  if (o_.dropout > 0.f) dropout_ = &register_module("dropout", std::make_unique<Dropout>(o_.dropout));
  fc_ = &register_module("fc", std::make_unique<Linear>(o_.widths.back(), o_.num_classes));
}

Tensor ResNet::forward(const Tensor& x) {
  Tensor y = bn1_.forward_relu(conv1_(x));
  for (Sequential* stage : stages_) y = (*stage)(y);
  y = flatten((*avgpool_)(y));
  return (*fc_)(dropout_ ? (*dropout_)(y) : y);
}

std::string ResNet::describe() const {
  return "ResNet(" + std::to_string(o_.widths.size()) + " stages of " + std::to_string(o_.blocks_per_stage) +
         " blocks)";
}

Shape ResNet::output_shape(const Shape& in) const {
  Shape s = bn1_.output_shape(conv1_.output_shape(in));
  for (const Sequential* stage : stages_) s = stage->output_shape(s);
  s = avgpool_->output_shape(s);
  return fc_->output_shape({s.at(0), s.at(1) * s.at(2) * s.at(3)});  // dropout keeps the shape
}

}  // namespace lockstep
