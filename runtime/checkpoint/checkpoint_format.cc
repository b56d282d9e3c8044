// Bytes of a checkpoint's files (see checkpoint_format.h).
#include "runtime/checkpoint/checkpoint_format.h"

#include <zlib.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <limits>

#include "runtime/check.h"

namespace lockstep::checkpoint_format {

// Tensor data and the MANIFEST CRC are stored little-endian by copying memory as it is.
static_assert(std::endian::native == std::endian::little, "checkpoints assume a little-endian host");

uint32_t crc32_of(std::string_view bytes) {
  uLong crc = ::crc32(0L, Z_NULL, 0);
  const auto* p = reinterpret_cast<const Bytef*>(bytes.data());
  size_t left = bytes.size();
  while (left > 0) {  // zlib takes uInt lengths
    const uInt n = static_cast<uInt>(std::min<size_t>(left, std::numeric_limits<uInt>::max()));
    crc = ::crc32(crc, p, n);
    p += n;
    left -= n;
  }
  return static_cast<uint32_t>(crc);
}

std::string dir_name(uint64_t step) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "ckpt-%09llu", static_cast<unsigned long long>(step));
  return buf;
}

std::optional<uint64_t> parse_dir_name(std::string_view name) {
  constexpr std::string_view kPrefix = "ckpt-";
  if (!name.starts_with(kPrefix)) return std::nullopt;
  const std::string_view digits = name.substr(kPrefix.size());
  if (digits.size() < 9) return std::nullopt;
  uint64_t step = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), step);
  if (ec != std::errc() || end != digits.data() + digits.size()) return std::nullopt;
  return step;
}

std::string encode_tensors(const std::vector<NamedTensor>& tensors, const std::string& file) {
  proto::TensorFile f;
  for (const NamedTensor& t : tensors) {
    LOCKSTEP_FAIL_IF(!t.tensor.defined()) << file << ": tensor '" << t.name << "' is undefined";
    LOCKSTEP_FAIL_IF(t.tensor.device() != Device::kCPU)
        << file << ": tensor '" << t.name << "' is not on the CPU (snapshot_tensors copies it there)";
    proto::TensorRecord* r = f.add_tensors();
    r->set_name(t.name);
    for (int64_t d : t.tensor.shape()) r->add_shape(d);
    r->set_data(reinterpret_cast<const char*>(t.tensor.data()),
                static_cast<size_t>(t.tensor.numel()) * sizeof(float));
  }
  std::string bytes;
  LOCKSTEP_FAIL_IF(!f.SerializeToString(&bytes))
      << file << ": cannot serialize " << tensors.size() << " tensors (over protobuf's 2 GiB limit?)";
  return bytes;
}

std::vector<NamedTensor> decode_tensors(const std::string& bytes, const std::string& file) {
  proto::TensorFile f;
  LOCKSTEP_FAIL_IF(!f.ParseFromString(bytes)) << file << ": unparsable (not a TensorFile)";
  std::vector<NamedTensor> out;
  out.reserve(static_cast<size_t>(f.tensors_size()));
  for (int i = 0; i < f.tensors_size(); ++i) {
    const proto::TensorRecord& r = f.tensors(i);
    Shape shape(r.shape().begin(), r.shape().end());
    for (int64_t d : shape)
      LOCKSTEP_FAIL_IF(d < 0) << file << ": tensor " << i << " '" << r.name() << "' has shape "
                              << shape_str(shape);
    const size_t need = static_cast<size_t>(shape_numel(shape)) * sizeof(float);
    LOCKSTEP_FAIL_IF(r.data().size() != need)
        << file << ": tensor " << i << " '" << r.name() << "' has " << r.data().size()
        << " bytes of data, shape " << shape_str(shape) << " needs " << need;
    Tensor t = Tensor::empty(shape);
    if (need) std::memcpy(t.data(), r.data().data(), need);
    out.push_back({r.name(), std::move(t)});
  }
  return out;
}

std::string encode_manifest(const proto::Manifest& m) {
  std::string body;
  LOCKSTEP_FAIL_IF(!m.SerializeToString(&body)) << kManifestFile << ": cannot serialize";
  const uint32_t crc = crc32_of(body);
  std::string bytes(sizeof crc, '\0');
  std::memcpy(bytes.data(), &crc, sizeof crc);
  return bytes + body;
}

proto::Manifest decode_manifest(const std::string& bytes) {
  uint32_t stored = 0;
  LOCKSTEP_FAIL_IF(bytes.size() < sizeof stored)
      << kManifestFile << ": truncated: size " << bytes.size() << ", shorter than its 4-byte CRC";
  std::memcpy(&stored, bytes.data(), sizeof stored);
  const std::string_view body = std::string_view(bytes).substr(sizeof stored);
  const uint32_t actual = crc32_of(body);
  char buf[96];
  std::snprintf(buf, sizeof buf, "CRC mismatch: content has crc32 %08x, header says %08x", actual, stored);
  LOCKSTEP_FAIL_IF(actual != stored) << kManifestFile << ": " << buf << " (damaged or truncated)";
  proto::Manifest m;
  LOCKSTEP_FAIL_IF(!m.ParseFromArray(body.data(), static_cast<int>(body.size())))
      << kManifestFile << ": unparsable (CRC matches, but not a Manifest)";
  return m;
}

}  // namespace lockstep::checkpoint_format
