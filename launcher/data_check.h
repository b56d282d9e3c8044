// The data set of a job, checked before anything starts (no run directory, no coordinator, no
// worker): the files' headers (magic, dims, counts), the label bytes against the model's outputs,
// the image shape against the model's input and the global batch against the training set.
#pragma once

#include <string>

#include "proto/job.pb.h"
#include "runtime/data/dataset.h"

namespace lockstep {

struct DataFacts {
  DatasetInfo train, test;
};

// Throws Error "PATH: field: why" (data.dir, model.input_shape or batch_size), one line naming the
// file at fault and the value, e.g. "job.textproto: data.dir: .../train-labels-idx1-ubyte: label
// 200 at index 7 is out of range [0, 10) (the model has 10 outputs)". Reads only headers and the
// label bytes.
DataFacts check_data(const proto::JobSpec& job, const std::string& path);

// Classes a job's model scores: the last Linear layer's out_features for a layer list, 10 for the
// reference models; 0 when a layer list has no Linear layer.
int64_t model_outputs(const proto::JobSpec& job);

}  // namespace lockstep
