// Error reporting: LOCKSTEP_CHECK throws lockstep::Error carrying file:line and a streamed message.
// Library code never exits; only main() turns an Error into a one-line message and an exit code.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace lockstep {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

namespace detail {
// Collects the streamed message and throws when the full expression ends.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* cond) {
    os_ << cond << " failed at " << file << ":" << line << ": ";
  }
  [[noreturn]] ~CheckFailure() noexcept(false) { throw Error(os_.str()); }
  template <typename T>
  CheckFailure& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  std::ostringstream os_;
};

// Throws with only the user-facing message: for errors a user causes (bad file, bad field).
class UserFailure {
 public:
  [[noreturn]] ~UserFailure() noexcept(false) { throw Error(os_.str()); }
  template <typename T>
  UserFailure& operator<<(const T& v) {
    os_ << v;
    return *this;
  }

 private:
  std::ostringstream os_;
};
}  // namespace detail

}  // namespace lockstep

// Internal invariant: the message is prefixed with the condition and file:line.
#define LOCKSTEP_CHECK(cond) \
  if (cond) {                \
  } else                     \
    ::lockstep::detail::CheckFailure(__FILE__, __LINE__, #cond)

// User-caused error (input file, job field, shapes): the message alone, meant for one line.
#define LOCKSTEP_FAIL_IF(cond) \
  if (!(cond)) {               \
  } else                       \
    ::lockstep::detail::UserFailure()
