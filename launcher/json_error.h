// One line, in our words, for nlohmann::json's exceptions: "line 2, column 1: not valid JSON"
// instead of "[json.exception.parse_error.101] parse error at line 2, column 1: ...", which names
// the library's internals. `text` is what was parsed, to turn a byte offset into line and column.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace lockstep {

inline std::string json_error_text(const nlohmann::json::exception& e, std::string_view text) {
  if (const auto* p = dynamic_cast<const nlohmann::json::parse_error*>(&e)) {
    // byte is 1-based: the position of the character that could not be read (past the end: text.size() + 1).
    const size_t at = p->byte > 0 ? std::min(p->byte - 1, text.size()) : 0;
    size_t line = 1, col = 1;
    for (size_t i = 0; i < at; ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    if (at >= text.size()) return "line " + std::to_string(line) + ": the JSON ends early (cut off?)";
    return "line " + std::to_string(line) + ", column " + std::to_string(col) + ": not valid JSON";
  }
  if (dynamic_cast<const nlohmann::json::type_error*>(&e)) return "a field holds a value of the wrong type";
  if (dynamic_cast<const nlohmann::json::out_of_range*>(&e)) return "a number is out of range, or a field is missing";
  return "not the JSON expected";
}

}  // namespace lockstep
