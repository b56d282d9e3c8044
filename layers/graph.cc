// Graph: checks, topological order, forward and shape inference.
#include "layers/graph.h"

#include <cctype>
#include <map>
#include <set>

#include "runtime/check.h"
#include "runtime/ops.h"

namespace lockstep {
namespace {

// "layer1.0.conv1": non-empty parts of [A-Za-z0-9_] joined by dots, as PyTorch module names.
bool valid_node_name(const std::string& name) {
  bool part_empty = true;
  for (char c : name) {
    if (c == '.') {
      if (part_empty) return false;
      part_empty = true;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      part_empty = false;
    } else {
      return false;
    }
  }
  return !part_empty;
}

const char* kind_name(GraphNode::Kind k) {
  return k == GraphNode::Kind::kAdd ? "add" : k == GraphNode::Kind::kConcat ? "concat" : "module";
}

}  // namespace

Graph::Graph(std::vector<GraphNode> nodes) {
  LOCKSTEP_FAIL_IF(nodes.empty()) << "graph: no nodes";
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < nodes.size(); ++i) {
    const GraphNode& n = nodes[i];
    LOCKSTEP_FAIL_IF(n.name.empty()) << "graph: node " << i << " has no name";
    LOCKSTEP_FAIL_IF(n.name == "input") << "graph: node " << i << " is named \"input\", the name of the model input";
    LOCKSTEP_FAIL_IF(!valid_node_name(n.name))
        << "node \"" << n.name << "\": a name is dot-separated parts of letters, digits and _ (a state_dict prefix)";
    if (auto [it, fresh] = index.emplace(n.name, i); !fresh)
      LOCKSTEP_FAIL_IF(true) << "node \"" << n.name << "\": a second node of that name (nodes " << it->second << " and "
                             << i << "; an unnamed node is named by its index)";
    const size_t k = n.inputs.size();
    LOCKSTEP_FAIL_IF(n.kind == GraphNode::Kind::kModule && k != 1)
        << "node \"" << n.name << "\": a module reads one input, got " << k;
    LOCKSTEP_FAIL_IF(n.kind != GraphNode::Kind::kModule && k < 2)
        << "node \"" << n.name << "\": " << kind_name(n.kind) << " merges two or more inputs, got " << k;
    LOCKSTEP_CHECK(n.kind != GraphNode::Kind::kModule || n.module) << "node " << n.name << " has no module";
  }
  // Kahn's algorithm, taking the earliest listed ready node each time.
  std::vector<std::vector<size_t>> readers(nodes.size());
  std::vector<int> pending(nodes.size(), 0);
  for (size_t i = 0; i < nodes.size(); ++i)
    for (const std::string& in : nodes[i].inputs) {
      if (in == "input") continue;
      auto it = index.find(in);
      LOCKSTEP_FAIL_IF(it == index.end()) << "node \"" << nodes[i].name << "\": unknown input \"" << in << "\"";
      readers[it->second].push_back(i);
      ++pending[i];
    }
  std::set<size_t> ready;
  for (size_t i = 0; i < nodes.size(); ++i)
    if (pending[i] == 0) ready.insert(i);
  std::vector<size_t> order;
  while (!ready.empty()) {
    const size_t i = *ready.begin();
    ready.erase(ready.begin());
    order.push_back(i);
    for (size_t r : readers[i])
      if (--pending[r] == 0) ready.insert(r);
  }
  if (order.size() != nodes.size()) {
    // The unordered nodes are on a cycle or downstream of one: peel off those no unordered node
    // reads until only the cycle's are left.
    std::vector<char> left(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) left[i] = pending[i] > 0;
    for (bool peeled = true; peeled;) {
      peeled = false;
      for (size_t i = 0; i < nodes.size(); ++i) {
        if (!left[i]) continue;
        bool read = false;
        for (size_t r : readers[i]) read = read || left[r];
        if (!read) left[i] = 0, peeled = true;
      }
    }
    std::string cycle;
    for (size_t i = 0; i < nodes.size(); ++i)
      if (left[i]) cycle += (cycle.empty() ? "\"" : ", \"") + nodes[i].name + "\"";
    LOCKSTEP_FAIL_IF(true) << "graph: a cycle through nodes " << cycle;
  }
  const size_t output = nodes.size() - 1;  // the last listed node
  for (size_t i = 0; i < nodes.size(); ++i)
    LOCKSTEP_FAIL_IF(i != output && readers[i].empty())
        << "node \"" << nodes[i].name << "\": its output is never used (only the last node, \""
        << nodes[output].name << "\", is the model's output)";
  LOCKSTEP_FAIL_IF(order.back() != output)
      << "node \"" << nodes[output].name << "\", the output, is read by node \"" << nodes[readers[output][0]].name
      << "\"";

  std::vector<int> step_of(nodes.size(), -1);
  for (size_t i : order) {
    GraphNode& n = nodes[i];
    Step s{n.name, n.kind, {}, nullptr, n.dim};
    for (const std::string& in : n.inputs) s.inputs.push_back(in == "input" ? -1 : step_of[index.at(in)]);
    if (n.module) s.module = &register_module(n.name, std::move(n.module));
    step_of[i] = static_cast<int>(steps_.size());
    steps_.push_back(std::move(s));
  }
  last_use_.assign(steps_.size(), -1);
  for (size_t t = 0; t < steps_.size(); ++t)
    for (int in : steps_[t].inputs)
      if (in >= 0) last_use_[in] = static_cast<int>(t);
}

std::string Graph::describe() const { return "Graph(" + std::to_string(steps_.size()) + " nodes)"; }

Tensor Graph::forward(const Tensor& x) {
  std::vector<Tensor> values(steps_.size());
  for (size_t t = 0; t < steps_.size(); ++t) {
    const Step& s = steps_[t];
    std::vector<Tensor> in;
    for (int i : s.inputs) in.push_back(i < 0 ? x : values[i]);
    try {
      switch (s.kind) {
        case GraphNode::Kind::kModule: values[t] = s.module->forward(in[0]); break;
        case GraphNode::Kind::kAdd: {
          Tensor sum = add(in[0], in[1]);
          for (size_t k = 2; k < in.size(); ++k) sum = add(sum, in[k]);
          values[t] = sum;
          break;
        }
        case GraphNode::Kind::kConcat: values[t] = cat(in, s.dim); break;
      }
    } catch (const Error& e) {
      throw Error("node \"" + s.name + "\": " + e.what());
    }
    for (int i : s.inputs)  // a value no later node reads is released now
      if (i >= 0 && last_use_[i] == static_cast<int>(t)) values[i] = Tensor();
  }
  return values.back();
}

Shape Graph::output_shape(const Shape& in) const {
  std::vector<Shape> shapes(steps_.size());
  for (size_t t = 0; t < steps_.size(); ++t) {
    const Step& s = steps_[t];
    std::vector<Shape> ins;
    for (int i : s.inputs) ins.push_back(i < 0 ? in : shapes[i]);
    try {
      switch (s.kind) {
        case GraphNode::Kind::kModule: shapes[t] = s.module->output_shape(ins[0]); break;
        case GraphNode::Kind::kAdd:
          for (const Shape& sh : ins)
            LOCKSTEP_FAIL_IF(sh != ins[0]) << "add: input shapes " << shape_str(ins[0]) << " and " << shape_str(sh)
                                           << " differ";
          shapes[t] = ins[0];
          break;
        case GraphNode::Kind::kConcat: {
          Shape out = ins[0];
          const int64_t nd = static_cast<int64_t>(out.size());
          LOCKSTEP_FAIL_IF(s.dim < 1 || s.dim >= nd)
              << "concat: dim " << s.dim << " is out of range for inputs " << shape_str(out) << " (allowed: 1 to "
              << nd - 1 << "; dim 0 is the batch)";
          for (size_t k = 1; k < ins.size(); ++k) {
            Shape a = ins[0], b = ins[k];
            LOCKSTEP_FAIL_IF(b.size() != a.size()) << "concat: input shapes " << shape_str(a) << " and " << shape_str(b);
            a[s.dim] = b[s.dim] = 0;
            LOCKSTEP_FAIL_IF(a != b) << "concat: input shapes " << shape_str(ins[0]) << " and " << shape_str(ins[k])
                                     << " differ outside dim " << s.dim;
            out[s.dim] += ins[k][s.dim];
          }
          shapes[t] = out;
          break;
        }
      }
    } catch (const Error& e) {
      throw Error("node \"" + s.name + "\": " + e.what());
    }
  }
  return shapes.back();
}

}  // namespace lockstep
