// Strict numbers on the command line, for every lockstep command: the whole argument must be one
// number inside the option's range; anything else is one line naming the option, the allowed range
// and the text given, e.g. `--epochs: expected a whole number in [1, 1000000], got "abc"`.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <sstream>
#include <string>

#include "launcher/quoted.h"
#include "runtime/check.h"

namespace lockstep::cli {

// A whole number in [lo, hi] (decimal, optional leading '-'); throws Error naming `option`.
inline int64_t whole_number(const std::string& option, const std::string& text, int64_t lo, int64_t hi) {
  int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [at, ec] = std::from_chars(text.data(), end, v);
  LOCKSTEP_FAIL_IF(text.empty() || ec != std::errc() || at != end || v < lo || v > hi)
      << option << ": expected a whole number in [" << lo << ", " << hi << "], got " << quoted(text);
  return v;
}

// Any unsigned 64-bit number (a seed); no sign allowed.
inline uint64_t unsigned_number(const std::string& option, const std::string& text) {
  uint64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [at, ec] = std::from_chars(text.data(), end, v);
  LOCKSTEP_FAIL_IF(text.empty() || ec != std::errc() || at != end)
      << option << ": expected a whole number in [0, " << std::numeric_limits<uint64_t>::max() << "], got "
      << quoted(text);
  return v;
}

// A finite real number in [lo, hi] (e.g. seconds); NaN and infinities are refused.
inline double real_number(const std::string& option, const std::string& text, double lo, double hi) {
  double v = 0;
  const char* end = text.data() + text.size();
  const auto [at, ec] = std::from_chars(text.data(), end, v);
  LOCKSTEP_FAIL_IF(text.empty() || ec != std::errc() || at != end || !std::isfinite(v) || v < lo || v > hi)
      << option << ": expected a number in [" << lo << ", " << hi << "], got " << quoted(text);
  return v;
}

}  // namespace lockstep::cli
