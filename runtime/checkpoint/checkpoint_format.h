// Bytes of a checkpoint's files (proto/checkpoint.proto): tensor files, the CRC-prefixed MANIFEST,
// and the directory names. Errors name the file ("model.pb: tensor 3 '2.weight' has 100 bytes of
// data, shape [5, 6] needs 120"); the caller prefixes the checkpoint.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proto/checkpoint.pb.h"
#include "runtime/checkpoint/checkpoint.h"

namespace lockstep::checkpoint_format {

inline constexpr const char* kStateFile = "state.pb";
inline constexpr const char* kModelFile = "model.pb";
inline constexpr const char* kOptimizerFile = "optimizer.pb";
inline constexpr const char* kRankBuffersFile = "rank_buffers.pb";  // only when some rank's buffers differ
inline constexpr const char* kManifestFile = "MANIFEST";

uint32_t crc32_of(std::string_view bytes);

// "ckpt-000000468"; parse_dir_name gives the step back, std::nullopt for any other name
// (temporary directories "ckpt-000000468.tmp-1234" included).
std::string dir_name(uint64_t step);
std::optional<uint64_t> parse_dir_name(std::string_view name);

// TensorFile bytes of CPU tensors; `file` names it in errors.
std::string encode_tensors(const std::vector<NamedTensor>& tensors, const std::string& file);
std::vector<NamedTensor> decode_tensors(const std::string& bytes, const std::string& file);

// MANIFEST bytes: CRC-32 of the serialized Manifest (4 bytes, little-endian), then the Manifest.
std::string encode_manifest(const proto::Manifest& m);
proto::Manifest decode_manifest(const std::string& bytes);

}  // namespace lockstep::checkpoint_format
