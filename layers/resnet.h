// ResNet for small images: the CIFAR networks of He et al. 2016 ("Deep Residual Learning for Image
// Recognition", section 4.2) with BatchNorm after every convolution and projection shortcuts
// (option B: a 1x1 convolution and BatchNorm wherever a block changes width or resolution),
// global average pooling and one Linear classifier. Module names follow torchvision's ResNet, so
// state_dict keys are PyTorch's: conv1.weight, bn1.running_mean, layer2.0.conv1.weight,
// layer2.0.downsample.0.weight, layer2.0.downsample.1.num_batches_tracked, fc.bias.
//   x: (N, in_channels, H, W) -> logits (N, num_classes)
//   stem: conv1 3x3 (widths[0]) bn1 relu; stage s: blocks_per_stage BasicBlocks of widths[s]
//   channels, the first of stages 2.. at stride 2; then adaptive average pool to 1x1, flatten, fc.
// ResNet-20: 3 blocks per stage of 16/32/64 channels (19 convolutions + fc); ResNet-8: 1 block.
#pragma once

#include <memory>
#include <vector>

#include "layers/adaptive_avg_pool2d.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/linear.h"
#include "layers/sequential.h"

namespace lockstep {

// Two 3x3 convolutions with BatchNorm, and the shortcut: relu(bn2(conv2(relu(bn1(conv1(x))))) + s),
// s = x, or downsample(x) when stride != 1 or in_channels != out_channels (torchvision's BasicBlock).
//   x: (N, in, H, W) -> (N, out, ceil(H / stride), ceil(W / stride))
class BasicBlock : public Module {
 public:
  BasicBlock(int64_t in_channels, int64_t out_channels, int64_t stride);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 private:
  Conv2d& conv1_;
  BatchNorm2d& bn1_;
  Conv2d& conv2_;
  BatchNorm2d& bn2_;
  Sequential* downsample_ = nullptr;  // Conv2d 1x1 (stride) and BatchNorm2d, or none
};

struct ResNetOptions {
  int64_t in_channels = 1;
  int64_t num_classes = 10;
  std::vector<int64_t> widths = {16, 32, 64};
  int64_t blocks_per_stage = 3;
  // Dropout(p) before fc (registered as "dropout", no state), for testing dropout in a residual
  // network; 0 (the default, as torchvision's ResNet): none.
  float dropout = 0.f;
};

class ResNet : public Module {
 public:
  explicit ResNet(ResNetOptions o);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 private:
  ResNetOptions o_;
  Conv2d& conv1_;
  BatchNorm2d& bn1_;
  std::vector<Sequential*> stages_;  // layer1, layer2, ...
  AdaptiveAvgPool2d* avgpool_ = nullptr;
  Module* dropout_ = nullptr;
  Linear* fc_ = nullptr;
};

}  // namespace lockstep
