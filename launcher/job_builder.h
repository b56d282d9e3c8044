// Turns a validated JobSpec into the objects a run needs: the model (reference or layer list),
// its optimizer and its learning-rate schedule.
#pragma once

#include <memory>
#include <vector>

#include "layers/sequential.h"
#include "proto/job.pb.h"
#include "runtime/data/dataset.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/optim/optimizer.h"

namespace lockstep {

struct BuiltModel {
  std::unique_ptr<Module> model;
  Shape sample_shape;  // one input sample
};

// Builds and initialises from job.seed(). Before anything is allocated, refuses parameters of more
// than 2^31 elements per tensor or in all (naming model.layers[i].<field> and its value). Then
// infers every layer's output shape by formula (Module::output_shape; no layer runs, so e.g. a
// BatchNorm without running statistics is no obstacle) and refuses a layer whose input does not
// fit ("model.layers[i]: <layer>: expected input ..., got ...") or whose output exceeds 2^31
// elements per sample. Throws lockstep::Error, one line.
BuiltModel build_model(const proto::JobSpec& job);
// Refuses a model whose input sample does not hold exactly the data's sample values (e.g.
// input_shape (1, 28, 29) for 28 x 28 images), naming model.input_shape and both shapes.
void check_model_input(const BuiltModel& built, const Dataset& data);
// optimizer.rule -> Sgd, AdamW, Adam, Rmsprop, Lars or Lamb over model.parameters().
std::unique_ptr<Optimizer> build_optimizer(const proto::JobSpec& job, Module& model);
// Per parameter of model.parameters(): true for the parameters LARS and LAMB do not adapt (Note
// [layer adaptation exclusions], runtime/optim/layer_adaptation.h): biases (named "bias") and
// every parameter of a BatchNorm, SyncBatchNorm or LayerNorm module, whatever its shape.
std::vector<bool> layer_adaptation_exclusions(Module& model);
// The schedule of job.schedule (null never: a constant lr without one). Its t counts epochs or
// optimizer steps as schedule.interval says (the trainer steps it).
std::unique_ptr<LrSchedule> build_schedule(const proto::JobSpec& job);
// Refuses a schedule that ends before the job does: one_cycle (torch raises past total_steps)
// with fewer total_steps than the job's optimizer steps (interval STEP: epochs x
// floor(steps_per_epoch / accumulate_steps); EPOCH: epochs), and accumulate_steps above the
// sampler steps of an epoch. One line naming the field and both counts.
void check_schedule_horizon(const proto::JobSpec& job, int64_t sampler_steps_per_epoch);

}  // namespace lockstep
