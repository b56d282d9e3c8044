// Text put into the report's HTML and SVG: every string that comes from a file (job spec, metrics,
// checkpoint errors, paths) passes through html_escape, so none can open a tag, an attribute or a
// script, and bytes that are not valid UTF-8 cannot break the page's encoding.
#pragma once

#include <string>

namespace lockstep::report {

// & < > " ' as character references; invalid UTF-8 and control bytes other than tab and newline
// as U+FFFD (the replacement character), so the result is valid UTF-8 for any input.
std::string html_escape(const std::string& text);

// A number as the report shows it: `digits` significant digits, no exponent for magnitudes in
// [1e-4, 1e6), a fixed form such as "0.8612" or "24130"; "n/a" for a non-finite value.
std::string format_number(double v, int digits = 4);

}  // namespace lockstep::report
