// JobSpec -> model, optimizer, schedule.
#include "launcher/job_builder.h"

#include <algorithm>
#include <string>
#include <unordered_set>

#include "layers/activation.h"
#include "layers/adaptive_avg_pool2d.h"
#include "layers/avg_pool2d.h"
#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/graph.h"
#include "layers/identity.h"
#include "layers/init.h"
#include "layers/layer_norm.h"
#include "layers/linear.h"
#include "layers/max_pool2d.h"
#include "layers/reference_models.h"
#include "layers/relu.h"
#include "layers/shape_math.h"
#include "runtime/check.h"
#include "runtime/optim/adam.h"
#include "runtime/optim/adamw.h"
#include "runtime/optim/lamb.h"
#include "runtime/optim/lars.h"
#include "runtime/optim/rmsprop.h"
#include "runtime/optim/sgd.h"

namespace lockstep {
namespace {

BatchNormOptions bn_options(const proto::BatchNormLayer& b) {
  BatchNormOptions o{.num_features = b.num_features()};
  if (b.has_eps()) o.eps = b.eps();
  if (b.has_momentum()) o.momentum = b.momentum();
  if (b.cumulative_average()) o.momentum = std::nullopt;
  if (b.has_affine()) o.affine = b.affine();
  if (b.has_track_running_stats()) o.track_running_stats = b.track_running_stats();
  return o;
}

std::unique_ptr<Module> make_layer(const proto::Layer& l) {
  switch (l.kind_case()) {
    case proto::Layer::kLinear:
      return std::make_unique<Linear>(l.linear().in_features(), l.linear().out_features(),
                                      !l.linear().has_bias() || l.linear().bias());
    case proto::Layer::kConv2D: {
      const auto& c = l.conv2d();
      return std::make_unique<Conv2d>(Conv2dOptions{c.in_channels(), c.out_channels(), c.kernel_size(),
                                                    c.has_stride() ? c.stride() : 1, c.padding(),
                                                    !c.has_bias() || c.bias(),
                                                    c.has_dilation() ? c.dilation() : 1,
                                                    c.has_groups() ? c.groups() : 1});
    }
    case proto::Layer::kMaxPool2D: {
      const auto& p = l.max_pool2d();
      return std::make_unique<MaxPool2d>(MaxPool2dOptions{p.kernel_size(), p.stride(), p.padding(),
                                                          p.has_dilation() ? p.dilation() : 1});
    }
    case proto::Layer::kAvgPool2D: {
      const auto& p = l.avg_pool2d();
      return std::make_unique<AvgPool2d>(AvgPool2dOptions{p.kernel_size(), p.stride(), p.padding(), p.ceil_mode(),
                                                          !p.has_count_include_pad() || p.count_include_pad()});
    }
    case proto::Layer::kAdaptiveAvgPool2D: {
      const auto& s = l.adaptive_avg_pool2d().output_size();
      LOCKSTEP_FAIL_IF(s.empty()) << "adaptive_avg_pool2d.output_size: empty";
      return std::make_unique<AdaptiveAvgPool2d>(s[0], s.size() > 1 ? s[1] : s[0]);
    }
    case proto::Layer::kIdentity:
      return std::make_unique<Identity>();
    case proto::Layer::kLayerNorm: {
      const auto& n = l.layer_norm();
      return std::make_unique<LayerNorm>(Shape(n.normalized_shape().begin(), n.normalized_shape().end()),
                                         n.has_eps() ? n.eps() : 1e-5f,
                                         !n.has_elementwise_affine() || n.elementwise_affine());
    }
    case proto::Layer::kRelu:
      return std::make_unique<ReLU>();
    case proto::Layer::kFlatten:
      return std::make_unique<Flatten>();
    case proto::Layer::kBatchNorm1D:
      return std::make_unique<BatchNorm1d>(bn_options(l.batch_norm1d()));
    case proto::Layer::kBatchNorm2D:
      return std::make_unique<BatchNorm2d>(bn_options(l.batch_norm2d()));
    case proto::Layer::kDropout:
      return std::make_unique<Dropout>(l.dropout().p());
    case proto::Layer::kLeakyRelu:
      return std::make_unique<LeakyReLU>(l.leaky_relu().has_negative_slope() ? l.leaky_relu().negative_slope() : 0.01f);
    case proto::Layer::kGelu:
      return std::make_unique<GELU>(l.gelu().approximate().empty() ? "none" : l.gelu().approximate());
    case proto::Layer::kSilu:
      return std::make_unique<SiLU>();
    case proto::Layer::kSigmoid:
      return std::make_unique<Sigmoid>();
    case proto::Layer::kTanh:
      return std::make_unique<Tanh>();
    case proto::Layer::kAdd:
    case proto::Layer::kConcat:
      LOCKSTEP_FAIL_IF(true) << "add and concat merge named inputs: give this layer inputs (the graph form)";
      break;
    case proto::Layer::KIND_NOT_SET:
      break;
  }
  LOCKSTEP_FAIL_IF(true) << "layer kind not set";
  return nullptr;
}

std::string shape_of(int64_t a, int64_t b) { return shape_str({a, b}); }

// Refuses a layer whose parameters would be absurd before anything is allocated: every parameter
// tensor holds at most kMaxTensorElements. The error names the field that makes it so and its
// value. Returns the layer's parameter count. Fields are validated positive (job_file.cc); a
// non-positive one is left to the layer's constructor to refuse.
int64_t checked_parameter_count(const proto::Layer& l, const std::string& at) {
  auto refuse = [&](const std::string& field, int64_t value, const std::string& tensor) {
    LOCKSTEP_FAIL_IF(true) << at << "." << field << ": " << value << " makes " << tensor
                           << " more than 2^31 elements (the most one tensor may hold)";
  };
  switch (l.kind_case()) {
    case proto::Layer::kLinear: {
      const int64_t in = l.linear().in_features(), out = l.linear().out_features();
      if (in <= 0 || out <= 0) return 0;
      const auto w = checked_mul(out, in);
      if (!w || *w > kMaxTensorElements)
        refuse(out >= in ? "linear.out_features" : "linear.in_features", std::max(in, out),
               "the weight " + shape_of(out, in));
      return *w + out;
    }
    case proto::Layer::kConv2D: {
      const auto& c = l.conv2d();
      const int64_t groups = c.has_groups() ? c.groups() : 1;
      if (groups <= 0 || c.in_channels() % groups != 0) return 0;
      // The weight is (out, in/groups, k, k): a depthwise layer's in is 1.
      const int64_t in = c.in_channels() / groups, out = c.out_channels(), k = c.kernel_size();
      if (in <= 0 || out <= 0 || k <= 0) return 0;
      const auto w = checked_numel({out, in, k, k});
      if (!w || *w > kMaxTensorElements) {
        const std::string weight = "the weight (" + std::to_string(out) + ", " + std::to_string(in) + ", " +
                                   std::to_string(k) + ", " + std::to_string(k) + ")";
        const auto kk = checked_mul(k, k);
        if (!kk || (*kk >= in && *kk >= out)) refuse("conv2d.kernel_size", k, weight);
        refuse(out >= in ? "conv2d.out_channels" : "conv2d.in_channels", out >= in ? out : c.in_channels(), weight);
      }
      return *w + out;
    }
    case proto::Layer::kBatchNorm1D:
    case proto::Layer::kBatchNorm2D: {
      const auto& b = l.kind_case() == proto::Layer::kBatchNorm1D ? l.batch_norm1d() : l.batch_norm2d();
      const std::string field = l.kind_case() == proto::Layer::kBatchNorm1D ? "batch_norm1d" : "batch_norm2d";
      if (b.num_features() > kMaxTensorElements)
        refuse(field + ".num_features", b.num_features(), "the weight and running statistics");
      return b.num_features() > 0 ? 2 * b.num_features() : 0;
    }
    case proto::Layer::kLayerNorm: {
      const auto& n = l.layer_norm();
      if (n.has_elementwise_affine() && !n.elementwise_affine()) return 0;
      const Shape shape(n.normalized_shape().begin(), n.normalized_shape().end());
      for (int64_t d : shape)
        if (d <= 0) return 0;
      const auto w = checked_numel(shape);
      if (!w || *w > kMaxTensorElements)
        refuse("layer_norm.normalized_shape", w ? *w : INT64_MAX, "the weight " + shape_str(shape));
      return 2 * *w;
    }
    default:
      return 0;
  }
}

// The input shape, then every layer's output shape by formula (Module::output_shape, nothing runs):
// each must fit the next layer and hold at most kMaxTensorElements per sample.
Shape sample_batch(const Shape& sample) {
  const auto sample_numel = checked_numel(sample);
  LOCKSTEP_FAIL_IF(!sample_numel || *sample_numel > kMaxTensorElements)
      << "model.input_shape: " << shape_str(sample) << " is more than 2^31 elements per sample";
  Shape shape{1};  // one sample; the batch size does not change whether shapes fit
  shape.insert(shape.end(), sample.begin(), sample.end());
  return shape;
}

void check_layer_shapes(const Sequential& model, const Shape& sample) {
  Shape shape = sample_batch(sample);
  for (size_t i = 0; i < model.size(); ++i) {
    const std::string at = "model.layers[" + std::to_string(i) + "]: ";
    const Module& layer = model[i];
    try {
      shape = layer.output_shape(shape);
    } catch (const Error& e) {
      throw Error(at + e.what());
    }
    const auto n = checked_numel(shape, 1);
    LOCKSTEP_FAIL_IF(!n || *n > kMaxTensorElements)
        << at << layer.describe() << ": output " << shape_str(shape)
        << " is more than 2^31 elements per sample";
  }
}

bool is_graph(const proto::ModelSpec& m) {
  for (const auto& l : m.layers())
    if (!l.name().empty() || l.inputs_size() > 0 || l.has_add() || l.has_concat()) return true;
  return false;
}

// model.layers[i] ("name") for messages.
std::string node_at(const proto::ModelSpec& m, int i) {
  std::string at = "model.layers[" + std::to_string(i) + "]";
  if (!m.layers(i).name().empty()) at += " (\"" + m.layers(i).name() + "\")";
  return at;
}

// The graph form (layers/graph.h): errors name the node (model.layers[i] ("name")).
std::unique_ptr<Module> build_graph(const proto::ModelSpec& m, const Shape& sample) {
  std::vector<GraphNode> nodes;
  for (int i = 0; i < m.layers_size(); ++i) {
    const proto::Layer& l = m.layers(i);
    GraphNode n;
    n.name = l.name().empty() ? std::to_string(i) : l.name();
    if (l.inputs_size() > 0)
      n.inputs.assign(l.inputs().begin(), l.inputs().end());
    else
      n.inputs = {i == 0 ? std::string("input") : nodes.back().name};
    try {
      if (l.has_add()) {
        n.kind = GraphNode::Kind::kAdd;
      } else if (l.has_concat()) {
        n.kind = GraphNode::Kind::kConcat;
        n.dim = l.concat().has_dim() ? l.concat().dim() : 1;
      } else {
        n.module = make_layer(l);
      }
    } catch (const Error& e) {
      throw Error(node_at(m, i) + ": " + e.what());
    }
    nodes.push_back(std::move(n));
  }
  std::unique_ptr<Graph> g;
  try {
    g = std::make_unique<Graph>(std::move(nodes));
  } catch (const Error& e) {
    throw Error(std::string("model.layers: ") + e.what());
  }
  Shape out;
  try {
    out = g->output_shape(sample_batch(sample));
  } catch (const Error& e) {
    throw Error(std::string("model.layers: ") + e.what());
  }
  const auto n = checked_numel(out, 1);
  LOCKSTEP_FAIL_IF(!n || *n > kMaxTensorElements)
      << "model.layers: output " << shape_str(out) << " is more than 2^31 elements per sample";
  return g;
}

}  // namespace

BuiltModel build_model(const proto::JobSpec& job) {
  BuiltModel b;
  const auto& m = job.model();
  if (!m.reference().empty()) {
    b.model = make_reference_model(m.reference());
    b.sample_shape = reference_model_input(m.reference());
    b.model->output_shape(sample_batch(b.sample_shape));
  } else {
    // Sizes first, from the fields alone: nothing is allocated for a model that cannot be.
    int64_t total = 0;
    for (int i = 0; i < m.layers_size(); ++i) {
      const std::string at = "model.layers[" + std::to_string(i) + "]";
      const auto sum = checked_add(total, checked_parameter_count(m.layers(i), at));
      LOCKSTEP_FAIL_IF(!sum || *sum > kMaxTensorElements) << at << ": the model's parameters pass 2^31 elements here";
      total = *sum;
    }
    b.sample_shape.assign(m.input_shape().begin(), m.input_shape().end());
    if (is_graph(m)) {
      b.model = build_graph(m, b.sample_shape);
    } else {
      auto seq = std::make_unique<Sequential>();
      for (int i = 0; i < m.layers_size(); ++i) {
        try {
          seq->add(make_layer(m.layers(i)));
        } catch (const Error& e) {
          throw Error("model.layers[" + std::to_string(i) + "]: " + e.what());
        }
      }
      check_layer_shapes(*seq, b.sample_shape);
      b.model = std::move(seq);
    }
  }
  init_parameters(*b.model, job.seed());
  seed_dropout(*b.model, job.seed(), /*rank=*/0);
  return b;
}

void check_model_input(const BuiltModel& built, const Dataset& data) {
  const Shape data_sample{1, data.height, data.width};
  const auto n = checked_numel(built.sample_shape);
  LOCKSTEP_FAIL_IF(!n || *n != data.sample_numel())
      << "model.input_shape: " << shape_str(built.sample_shape) << " does not hold one data sample "
      << shape_str(data_sample) << " (" << data.sample_numel() << " values)";
}

std::vector<bool> layer_adaptation_exclusions(Module& model) {
  std::unordered_set<const Parameter*> norm_params;
  for (auto& [name, m] : model.named_modules())
    if (dynamic_cast<BatchNorm*>(m) || dynamic_cast<LayerNorm*>(m))
      for (auto& [pname, p] : m->named_parameters()) norm_params.insert(p);
  std::vector<bool> out;
  for (auto& [name, p] : model.named_parameters()) {
    const bool bias = name == "bias" || (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0);
    out.push_back(bias || norm_params.count(p) > 0);
  }
  return out;
}

// The one place that knows every update rule: OptimizerSpec's `rule` -> an Optimizer over
// model.parameters(). Fields left unset take the rule's defaults (runtime/optim/*.h), which are
// PyTorch's where PyTorch has the rule.
std::unique_ptr<Optimizer> build_optimizer(const proto::JobSpec& job, Module& model) {
  const auto& o = job.optimizer();
  switch (o.rule_case()) {
    case proto::OptimizerSpec::kAdamw: {
      AdamWOptions a{.lr = o.lr(), .weight_decay = o.weight_decay(), .amsgrad = o.adamw().amsgrad()};
      if (o.adamw().has_beta1()) a.beta1 = o.adamw().beta1();
      if (o.adamw().has_beta2()) a.beta2 = o.adamw().beta2();
      if (o.adamw().has_eps()) a.eps = o.adamw().eps();
      return std::make_unique<AdamW>(model.parameters(), a);
    }
    case proto::OptimizerSpec::kAdam: {
      AdamOptions a{.lr = o.lr(), .weight_decay = o.weight_decay(), .amsgrad = o.adam().amsgrad()};
      if (o.adam().has_beta1()) a.beta1 = o.adam().beta1();
      if (o.adam().has_beta2()) a.beta2 = o.adam().beta2();
      if (o.adam().has_eps()) a.eps = o.adam().eps();
      return std::make_unique<Adam>(model.parameters(), a);
    }
    case proto::OptimizerSpec::kRmsprop: {
      RmspropOptions r{.lr = o.lr(), .weight_decay = o.weight_decay(), .momentum = o.rmsprop().momentum(),
                       .centered = o.rmsprop().centered()};
      if (o.rmsprop().has_alpha()) r.alpha = o.rmsprop().alpha();
      if (o.rmsprop().has_eps()) r.eps = o.rmsprop().eps();
      return std::make_unique<Rmsprop>(model.parameters(), r);
    }
    case proto::OptimizerSpec::kLars: {
      LarsOptions l{.lr = o.lr(), .momentum = o.lars().momentum(), .weight_decay = o.weight_decay(),
                    .exclude = layer_adaptation_exclusions(model)};
      if (o.lars().has_trust_coefficient()) l.trust_coefficient = o.lars().trust_coefficient();
      return std::make_unique<Lars>(model.parameters(), l);
    }
    case proto::OptimizerSpec::kLamb: {
      LambOptions l{.lr = o.lr(), .weight_decay = o.weight_decay(), .exclude = layer_adaptation_exclusions(model)};
      if (o.lamb().has_beta1()) l.beta1 = o.lamb().beta1();
      if (o.lamb().has_beta2()) l.beta2 = o.lamb().beta2();
      if (o.lamb().has_eps()) l.eps = o.lamb().eps();
      return std::make_unique<Lamb>(model.parameters(), l);
    }
    case proto::OptimizerSpec::kSgd:
    case proto::OptimizerSpec::RULE_NOT_SET:  // refused by validate_job; SGD as before
      break;
  }
  SgdOptions s{.lr = o.lr(), .momentum = o.sgd().momentum(), .dampening = o.sgd().dampening(),
               .weight_decay = o.weight_decay(), .nesterov = o.sgd().nesterov()};
  return std::make_unique<Sgd>(model.parameters(), s);
}

std::unique_ptr<LrSchedule> build_schedule(const proto::JobSpec& job) {
  const auto& s = job.schedule();
  const float lr = job.optimizer().lr();
  std::unique_ptr<LrSchedule> base;
  if (s.has_step()) {
    base = std::make_unique<StepLr>(lr, s.step().step_size(), s.step().gamma());
  } else if (s.has_cosine()) {
    base = std::make_unique<CosineLr>(lr, s.cosine().t_max(), s.cosine().eta_min());
  } else if (s.has_linear()) {  // torch LinearLR's defaults
    const auto& l = s.linear();
    base = std::make_unique<LinearLr>(lr, l.has_start_factor() ? l.start_factor() : 1.f / 3,
                                      l.has_end_factor() ? l.end_factor() : 1.f,
                                      l.has_total_iters() ? l.total_iters() : 5);
  } else if (s.has_polynomial()) {  // torch PolynomialLR's defaults
    const auto& p = s.polynomial();
    base = std::make_unique<PolynomialLr>(lr, p.has_total_iters() ? p.total_iters() : 5,
                                          p.has_power() ? p.power() : 1.f);
  } else if (s.has_one_cycle()) {  // torch OneCycleLR's defaults
    const auto& o = s.one_cycle();
    OneCycleOptions oc{.total_steps = o.total_steps()};
    if (o.has_pct_start()) oc.pct_start = o.pct_start();
    if (o.has_div_factor()) oc.div_factor = o.div_factor();
    if (o.has_final_div_factor()) oc.final_div_factor = o.final_div_factor();
    oc.anneal_cos = o.anneal_strategy() != "linear";
    base = std::make_unique<OneCycleLr>(lr, oc);
  } else {
    base = std::make_unique<ConstantLr>(lr);
  }
  const int64_t warmup = s.interval() == proto::ScheduleSpec::STEP ? s.warmup_steps() : s.warmup_epochs();
  if (warmup > 0)
    base = std::make_unique<LinearWarmup>(std::move(base),
                                          s.has_warmup_start_factor() ? s.warmup_start_factor() : 1.f / 3, warmup);
  return base;
}

void check_schedule_horizon(const proto::JobSpec& job, int64_t sampler_steps_per_epoch) {
  const int64_t k = job.has_accumulate_steps() ? job.accumulate_steps() : 1;
  LOCKSTEP_FAIL_IF(k > sampler_steps_per_epoch)
      << "accumulate_steps: " << k << " is more than the " << sampler_steps_per_epoch
      << " micro-batches of an epoch (train samples / batch_size), so no optimizer step would be taken";
  const auto& s = job.schedule();
  if (!s.has_one_cycle()) return;
  const bool per_step = s.interval() == proto::ScheduleSpec::STEP;
  const int64_t per_epoch = per_step ? sampler_steps_per_epoch / k : 1;
  const int64_t needed = job.epochs() * per_epoch;
  LOCKSTEP_FAIL_IF(needed > s.one_cycle().total_steps())
      << "schedule.one_cycle.total_steps: " << s.one_cycle().total_steps() << " is fewer than the job's " << needed
      << (per_step ? " optimizer steps (" + std::to_string(job.epochs()) + " epochs x " + std::to_string(per_epoch) +
                         " steps)"
                   : std::string(" epochs"))
      << "; torch OneCycleLR refuses to step past total_steps";
}

}  // namespace lockstep
