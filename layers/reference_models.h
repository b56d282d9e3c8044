// The reference models of the Fashion-MNIST recipe, by name; defined once here, used by C++ code,
// job files (model.reference) and the benchmarks. fmnist-mlp and fmnist-cnn are nn.Sequential stacks:
//   fmnist-mlp: Linear(784,512) BN1d ReLU Dropout(0.2) Linear(512,256) BN1d ReLU Dropout(0.2)
//               Linear(256,10)                           input (N, 784)
//   fmnist-cnn: Conv(1,32,3,p1) BN2d ReLU MaxPool2 Conv(32,64,3,p1) BN2d ReLU MaxPool2 Dropout(0.25)
//               Flatten Linear(3136,128) BN1d ReLU Dropout(0.5) Linear(128,10)   input (N, 1, 28, 28)
//   fmnist-resnet20: ResNet-20 of He et al. 2016 (layers/resnet.h): 3 stages of 16/32/64 channels,
//               3 BasicBlocks each, projection shortcuts, global average pooling  input (N, 1, 28, 28)
//   fmnist-resnet8:  the same with 1 block per stage, for quick tests              input (N, 1, 28, 28)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/sequential.h"

namespace lockstep {

struct ModelOptions {
  float dropout_scale = 1.f;  // multiplies every dropout p (0 disables dropout, for golden runs)
};

std::vector<std::string> reference_model_names();
// The shape of one input sample of a reference model: (784) or (1, 28, 28).
Shape reference_model_input(const std::string& name);
// Throws naming the model when it is not a reference model.
std::unique_ptr<Module> make_reference_model(const std::string& name, ModelOptions o = {});

}  // namespace lockstep
