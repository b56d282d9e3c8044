// Metrics lines -> TensorBoard scalars (tags in metrics_events.h).
#include "launcher/tensorboard/metrics_events.h"

#include <cmath>
#include <limits>

#include <nlohmann/json.hpp>

#include "runtime/check.h"

namespace lockstep::tensorboard {
namespace {

using nlohmann::json;

// The value of key in the line when present: a number, or null as NaN.
void add(std::vector<Scalar>& out, const json& line, const char* key, const std::string& tag) {
  const auto it = line.find(key);
  if (it == line.end()) return;
  const double v = it->is_null() ? std::numeric_limits<double>::quiet_NaN() : it->get<double>();
  out.push_back({tag, static_cast<float>(v)});
}

}  // namespace

std::optional<StepScalars> scalars_of_metrics_line(const std::string& line) {
  const json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
  LOCKSTEP_CHECK(j.is_object()) << "metrics line is not a JSON object: " << line;
  const std::string kind = j.value("kind", "");
  if (kind != "step" && kind != "epoch" && kind != "rank") return std::nullopt;
  LOCKSTEP_CHECK(j.contains("step") && j["step"].is_number_integer()) << "metrics line has no step: " << line;
  StepScalars s;
  s.step = j["step"].get<int64_t>();
  std::vector<Scalar>& v = s.values;
  if (kind == "step") {
    add(v, j, "loss", "train/loss");
    add(v, j, "lr", "train/lr");
    add(v, j, "samples_per_sec", "train/samples_per_sec");
    add(v, j, "grad_norm", "train/grad_norm");
  } else if (kind == "epoch") {
    add(v, j, "train_loss", "epoch/train_loss");
    add(v, j, "lr", "epoch/lr");
    add(v, j, "train_samples_per_sec", "epoch/samples_per_sec");
    add(v, j, "grad_norm", "epoch/grad_norm");
    if (j.value("test_loss", -1.0) >= 0) {  // -1: the epoch ran no eval
      add(v, j, "test_loss", "test/loss");
      add(v, j, "test_accuracy", "test/accuracy");
      if (const auto top = j.find("top_k_accuracy"); top != j.end() && top->is_object())
        for (const auto& [k, acc] : top->items()) add(v, *top, k.c_str(), "test/top" + k + "_accuracy");
    }
  } else {
    const std::string r = "rank" + std::to_string(j.value("rank", -1));
    add(v, j, "step_time_s", r + "/step_time_s");
    add(v, j, "comm_exposed_s", r + "/comm_exposed_s");
    add(v, j, "compute_s", r + "/compute_s");
  }
  return s;
}

MetricsEvents::MetricsEvents(const std::string& dir, int64_t first_step) : events_(dir) {
  events_.session_start(first_step);
}

void MetricsEvents::write(const std::string& line) {
  if (const auto s = scalars_of_metrics_line(line)) events_.add_scalars(s->step, s->values);
}

}  // namespace lockstep::tensorboard
