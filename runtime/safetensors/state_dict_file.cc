// state_dict <-> safetensors under PyTorch's keys and dtypes (see state_dict_file.h).
#include "runtime/safetensors/state_dict_file.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "runtime/check.h"

namespace lockstep::safetensors {
namespace {

static_assert(std::endian::native == std::endian::little, "safetensors data is little-endian");

constexpr const char* kCountKey = "num_batches_tracked";
constexpr const char* kDdpPrefix = "module.";
// lockstep holds num_batches_tracked in a float: whole numbers are exact up to 2^24.
constexpr int64_t kMaxExactCount = int64_t{1} << 24;

std::string json_quoted(const std::string& s) { return nlohmann::json(s).dump(); }

std::string shape_text(const Shape& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

// "\"a\"" or "\"a\", \"b\" and 3 more": the first few of a list, for a one-line message.
std::string some(const std::vector<std::string>& keys) {
  std::string s;
  const size_t shown = std::min<size_t>(keys.size(), 3);
  for (size_t i = 0; i < shown; ++i) s += (i ? ", " : "") + json_quoted(keys[i]);
  if (keys.size() > shown) s += " and " + std::to_string(keys.size() - shown) + " more";
  return s;
}

bool all_prefixed(const File& f) {
  if (f.tensors.empty()) return false;
  for (const Entry& e : f.tensors)
    if (e.name.rfind(kDdpPrefix, 0) != 0) return false;
  return true;
}

}  // namespace

bool is_count_key(const std::string& key) {
  const std::string suffix = std::string(".") + kCountKey;
  return key == kCountKey ||
         (key.size() > suffix.size() && key.compare(key.size() - suffix.size(), suffix.size(), suffix) == 0);
}

File from_state_dict(const std::vector<NamedTensor>& state) {
  File f;
  f.metadata["format"] = "pt";
  for (const NamedTensor& nt : state) {
    const Tensor t = nt.tensor.device() == Device::kCPU ? nt.tensor.contiguous() : nt.tensor.to(Device::kCPU).contiguous();
    Entry e{.name = nt.name, .dtype = "F32", .shape = t.shape(), .bytes = {}};
    if (is_count_key(nt.name)) {
      LOCKSTEP_FAIL_IF(t.numel() != 1) << "state_dict key " << json_quoted(nt.name) << " has shape " << shape_text(t.shape())
                                       << "; a batch count is a scalar";
      const double v = t[0];
      LOCKSTEP_FAIL_IF(!(v >= 0 && v <= 9007199254740992.0) || std::floor(v) != v)
          << "state_dict key " << json_quoted(nt.name) << " holds " << v << ", not a batch count";
      const int64_t count = static_cast<int64_t>(v);
      e.dtype = "I64";
      e.bytes.assign(reinterpret_cast<const char*>(&count), sizeof count);
    } else {
      e.bytes.assign(reinterpret_cast<const char*>(t.data()), static_cast<size_t>(t.numel()) * sizeof(float));
    }
    f.tensors.push_back(std::move(e));
  }
  return f;
}

void load_into(const File& f, const std::string& file, const std::vector<std::pair<std::string, Tensor*>>& state,
               const LoadOptions& options, const std::function<void(const std::string&)>& note) {
  // Keys as the model would name them: DDP's "module." stripped when every key carries it.
  const bool ddp = all_prefixed(f);
  std::map<std::string, const Entry*> by_key;
  for (const Entry& e : f.tensors) by_key[ddp ? e.name.substr(std::strlen(kDdpPrefix)) : e.name] = &e;
  std::map<std::string, const Tensor*> live;
  for (const auto& [name, t] : state) live[name] = t;

  std::vector<std::string> missing, missing_counts, unexpected;
  for (const auto& [name, t] : state)
    if (!by_key.count(name)) (is_count_key(name) ? missing_counts : missing).push_back(name);
  for (const Entry& e : f.tensors) {
    const std::string key = ddp ? e.name.substr(std::strlen(kDdpPrefix)) : e.name;
    if (!live.count(key)) unexpected.push_back(e.name);
  }
  const std::string ddp_note = ddp ? " (after stripping DDP's \"module.\" prefix)" : "";
  // Some keys, not all, carry DDP's prefix: the prefix is why keys do not match, so say so first.
  size_t prefixed = 0;
  for (const Entry& e : f.tensors) prefixed += e.name.rfind(kDdpPrefix, 0) == 0;
  LOCKSTEP_FAIL_IF(!ddp && prefixed > 0 && (!missing.empty() || !unexpected.empty()))
      << file << ": " << prefixed << " of " << f.tensors.size() << " keys carry DDP's \"module.\" prefix (e.g. "
      << json_quoted(std::find_if(f.tensors.begin(), f.tensors.end(), [](const Entry& e) {
           return e.name.rfind(kDdpPrefix, 0) == 0;
         })->name)
      << "), the others do not; the prefix is stripped only when every key carries it: save "
         "model.module.state_dict(), or strip it with torch's consume_prefix_in_state_dict_if_present";
  if (!missing.empty()) {
    const auto& m = missing.front();
    LOCKSTEP_FAIL_IF(true) << file << ": missing key " << json_quoted(m) << " (shape " << shape_text(live[m]->shape())
                           << " in the model)" << ddp_note
                           << (missing.size() > 1 ? "; " + std::to_string(missing.size()) + " keys missing in all: " + some(missing) : "")
                           << (unexpected.empty() ? "" : "; unexpected: " + some(unexpected));
  }
  if (!unexpected.empty()) {
    const auto& u = unexpected.front();
    const bool looks_ddp = u.rfind(kDdpPrefix, 0) == 0;
    LOCKSTEP_FAIL_IF(true) << file << ": unexpected key " << json_quoted(u) << " (the model has no such entry)"
                           << (looks_ddp ? "; it carries DDP's \"module.\" prefix, but not every key does" : "")
                           << (unexpected.size() > 1 ? "; " + std::to_string(unexpected.size()) + " unexpected in all: " + some(unexpected) : "");
  }
  if (!missing_counts.empty()) {
    LOCKSTEP_FAIL_IF(!options.fill_num_batches_tracked)
        << file << ": missing key " << json_quoted(missing_counts.front())
        << (missing_counts.size() > 1 ? " (and " + std::to_string(missing_counts.size() - 1) + " more num_batches_tracked)" : "")
        << ": torch 1.13 would set it to 0, a stale count for cumulative-average BatchNorm; set "
        << options.option_name << ": true to accept that";
  }
  if (ddp && note)
    note(file + ": the file holds DDP-wrapped keys (\"" + f.tensors.front().name +
         "\"); their \"module.\" prefix is stripped, as torch's consume_prefix_in_state_dict_if_present does");

  std::vector<NamedTensor> from;
  from.reserve(state.size());
  for (const auto& [name, t] : state) {
    auto it = by_key.find(name);
    if (it == by_key.end()) {  // a num_batches_tracked, filled as torch does
      from.push_back({name, Tensor::zeros(t->shape())});
      if (note) note(file + ": key " + json_quoted(name) + " is missing; set to 0, as torch's load_state_dict does");
      continue;
    }
    const Entry& e = *it->second;
    LOCKSTEP_FAIL_IF(e.shape != t->shape()) << file << ": key " << json_quoted(e.name) << ": shape " << shape_text(e.shape)
                                            << " in the file, " << shape_text(t->shape()) << " in the model";
    if (is_count_key(name)) {
      LOCKSTEP_FAIL_IF(e.dtype != "I64") << file << ": key " << json_quoted(e.name) << ": dtype " << e.dtype
                                         << ", expected I64 (torch's int64 batch count)";
      int64_t count = 0;
      std::memcpy(&count, e.bytes.data(), sizeof count);
      LOCKSTEP_FAIL_IF(count < 0 || count > kMaxExactCount)
          << file << ": key " << json_quoted(e.name) << ": batch count " << count << " is outside [0, 2^24]";
      from.push_back({name, Tensor::full(t->shape(), static_cast<float>(count))});
      continue;
    }
    LOCKSTEP_FAIL_IF(e.dtype != "F32") << file << ": key " << json_quoted(e.name) << ": dtype " << e.dtype
                                       << ", expected F32 (save float32 tensors: .float())";
    std::vector<float> values(static_cast<size_t>(shape_numel(e.shape)));
    std::memcpy(values.data(), e.bytes.data(), e.bytes.size());
    // A NaN or Inf weight would only show as a non-finite loss at step 1, naming no file.
    const auto bad = std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
    LOCKSTEP_FAIL_IF(bad != values.end())
        << file << ": key " << json_quoted(e.name) << ": value " << *bad << " at flat index " << (bad - values.begin())
        << " is not finite (" << std::count_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); })
        << " of " << values.size() << " values are NaN or Inf); the weights cannot be trained from";
    from.push_back({name, Tensor::from(e.shape, values)});
  }
  copy_tensors(from, state, file);
}

}  // namespace lockstep::safetensors
