// JobSpec -> model, optimizer, schedule.
#include "launcher/job_builder.h"

#include "layers/batch_norm.h"
#include "layers/conv2d.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/init.h"
#include "layers/linear.h"
#include "layers/max_pool2d.h"
#include "layers/reference_models.h"
#include "layers/relu.h"
#include "runtime/check.h"
#include "runtime/optim/adamw.h"
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
                                                    !c.has_bias() || c.bias()});
    }
    case proto::Layer::kMaxPool2D:
      return std::make_unique<MaxPool2d>(l.max_pool2d().kernel_size(), l.max_pool2d().stride());
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
    case proto::Layer::KIND_NOT_SET:
      break;
  }
  LOCKSTEP_FAIL_IF(true) << "layer kind not set";
  return nullptr;
}

}  // namespace

BuiltModel build_model(const proto::JobSpec& job) {
  BuiltModel b;
  const auto& m = job.model();
  if (!m.reference().empty()) {
    b.model = make_reference_model(m.reference());
    b.sample_shape = reference_model_input(m.reference());
  } else {
    b.model = std::make_unique<Sequential>();
    for (int i = 0; i < m.layers_size(); ++i) {
      try {
        b.model->add(make_layer(m.layers(i)));
      } catch (const Error& e) {
        throw Error("model.layers[" + std::to_string(i) + "]: " + e.what());
      }
    }
    (*b.model)[0].set_needs_input_grad(false);
    b.sample_shape.assign(m.input_shape().begin(), m.input_shape().end());
  }
  Shape probe{1};
  probe.insert(probe.end(), b.sample_shape.begin(), b.sample_shape.end());
  try {
    b.model->check_shapes(probe);
  } catch (const Error& e) {
    throw Error(std::string("model: shape mismatch: ") + e.what());
  }
  init_parameters(*b.model, job.seed());
  seed_dropout(*b.model, job.seed(), /*rank=*/0);
  return b;
}

std::unique_ptr<Optimizer> build_optimizer(const proto::JobSpec& job, Sequential& model) {
  const auto& o = job.optimizer();
  if (o.has_adamw()) {
    AdamWOptions a{.lr = o.lr(), .weight_decay = o.weight_decay()};
    if (o.adamw().has_beta1()) a.beta1 = o.adamw().beta1();
    if (o.adamw().has_beta2()) a.beta2 = o.adamw().beta2();
    if (o.adamw().has_eps()) a.eps = o.adamw().eps();
    return std::make_unique<AdamW>(model.parameters(), a);
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
  } else {
    base = std::make_unique<ConstantLr>(lr);
  }
  if (s.warmup_epochs() > 0)
    base = std::make_unique<LinearWarmup>(std::move(base),
                                          s.has_warmup_start_factor() ? s.warmup_start_factor() : 1.f / 3,
                                          s.warmup_epochs());
  return base;
}

}  // namespace lockstep
