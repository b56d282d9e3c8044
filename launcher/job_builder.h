// Turns a validated JobSpec into the objects a run needs: the model (reference or layer list),
// its optimizer and its learning-rate schedule.
#pragma once

#include <memory>

#include "layers/sequential.h"
#include "proto/job.pb.h"
#include "runtime/optim/lr_schedule.h"
#include "runtime/optim/optimizer.h"

namespace lockstep {

struct BuiltModel {
  std::unique_ptr<Sequential> model;
  Shape sample_shape;  // one input sample
};

// Builds, initialises from job.seed() and checks that consecutive layers' shapes fit (the error
// names the layer index and both shapes).
BuiltModel build_model(const proto::JobSpec& job);
std::unique_ptr<Optimizer> build_optimizer(const proto::JobSpec& job, Sequential& model);
std::unique_ptr<LrSchedule> build_schedule(const proto::JobSpec& job);

}  // namespace lockstep
