// Command-line overrides of job fields: `--set optimizer.lr=0.1` (repeatable) sets any field of the
// JobSpec (proto/job.proto) as if the job file said so, before the job is validated, so every range
// check of the job file applies to the value set.
#pragma once

#include <string>
#include <vector>

#include "proto/job.pb.h"
#include "runtime/check.h"

namespace lockstep {

// Applies each "PATH=VALUE", in order, to job. PATH names a field by its protobuf text-format
// name, through messages: "optimizer.lr", "optimizer.sgd.momentum", "model.layers[2].dropout.p"
// (an index picks an existing element of a repeated message). VALUE is what the job file would
// hold after "NAME:", parsed by protobuf's TextFormat:
//   numbers as in the job file; bools true/false (also t/f, 1/0); enums by name or number;
//   strings as written, without quotes ("--set data.dir=/data/fmnist");
//   a message as its text body, replacing the whole message ("--set 'optimizer.sgd={momentum: 0.9}'");
//   a repeated field is replaced by the list given: "--set eval.top_k=[1,5]" (or "1,5", or one value;
//   "[]" empties it).
// Throws Error, one line, naming --set, the argument and why, e.g.
//   "--set optimizer.lrr=0.1: optimizer has no field lrr (known: lr, weight_decay, sgd, adamw)"
//   "--set batch_size=abc: Expected integer, got: abc"
//   "--set precision=FP16: precision: unknown value FP16 (known: FP32, BF16)"
void apply_overrides(proto::JobSpec& job, const std::vector<std::string>& sets);

// A job check's error about a field some --set gave (the message names "FIELD:"), with
// " (set by --set ARG)" added so the user looks at the command line, not the file; else unchanged.
std::string blame_override(const std::string& message, const std::vector<std::string>& sets);

// Runs check (the job checks) and rethrows its Error through blame_override.
template <typename F>
void check_with_overrides(const std::vector<std::string>& sets, F&& check) {
  try {
    check();
  } catch (const Error& e) {
    throw Error(blame_override(e.what(), sets));
  }
}

}  // namespace lockstep
