// User-given text inside a one-line error message: in double quotes, with quotes and backslashes
// escaped and control or non-ASCII bytes as \xNN, so a message never spans lines or hides a byte.
#pragma once

#include <cstdio>
#include <string>

namespace lockstep {

inline std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (unsigned char ch : text) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += static_cast<char>(ch);
    } else if (ch < 0x20 || ch >= 0x7f) {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  return out + "\"";
}

}  // namespace lockstep
