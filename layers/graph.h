// Graph: a module whose forward runs named nodes, each reading the outputs of earlier ones: the
// form job files use for residual blocks and branches (torch.fx's GraphModule plays this part in
// PyTorch). A node is a module (one input) or a merge: add (elementwise sum of two or more inputs,
// the residual sum) or concat (torch.cat along a dim). "input" names the model's input; the last
// node is the output. Each module is registered under its node's name, so a node named
// "layer1.0.conv1" gives the state_dict keys "layer1.0.conv1.weight", as the same model written as
// nested PyTorch modules does.
//
// The constructor orders the nodes topologically (listing order breaks ties, so a list already in
// order runs as written) and refuses, naming the node: a duplicate or empty name, an unknown input,
// a cycle, a module with other than one input, a merge with fewer than two, and an output no node
// reads. output_shape() refuses a merge whose input shapes do not fit.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "layers/module.h"

namespace lockstep {

struct GraphNode {
  enum class Kind { kModule, kAdd, kConcat };
  std::string name;
  Kind kind = Kind::kModule;
  std::vector<std::string> inputs;  // node names or "input"
  std::unique_ptr<Module> module;   // kModule only
  int64_t dim = 1;                  // kConcat: the dim to concatenate along (1: channels)
};

class Graph : public Module {
 public:
  explicit Graph(std::vector<GraphNode> nodes);
  Tensor forward(const Tensor& x) override;
  std::string describe() const override;
  Shape output_shape(const Shape& in) const override;

 private:
  struct Step {
    std::string name;
    GraphNode::Kind kind;
    std::vector<int> inputs;  // step indices, -1 for the model input
    Module* module = nullptr;
    int64_t dim = 1;
  };
  std::vector<Step> steps_;  // topological order
  std::vector<int> last_use_;  // per step: the last step that reads it (frees the value after)
};

}  // namespace lockstep
