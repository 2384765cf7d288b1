// Status values returned by every fallible function of the core. No exception
// leaves the core: callers check `ok()` and read `message` for the reason.
#ifndef DUALMEM_STATUS_H_
#define DUALMEM_STATUS_H_

#include <string>
#include <utility>

namespace dualmem {

// Stable codes; the JavaScript bindings expose them as strings (see
// `StatusCodeName`), so only append new values.
enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument = 1,  // a value has the wrong shape, range or type
  kNotFound = 2,         // an index, class or key does not exist
  kParseError = 3,       // a file or text could not be parsed
  kLimitExceeded = 4,    // a size is above an explicit maximum
  kUnsupported = 5,      // valid input that this build cannot handle
  kInternal = 6,         // a broken invariant inside the core
  kFailedPrecondition = 7,  // valid input that does not fit the current state,
                            // e.g. a snapshot written for another model
};

// Returns the stable name of a code, e.g. "invalid_argument".
const char* StatusCodeName(StatusCode code);

struct Status {
  StatusCode code = StatusCode::kOk;
  std::string message;

  bool ok() const { return code == StatusCode::kOk; }
  static Status Ok() { return Status(); }
};

inline Status MakeStatus(StatusCode code, std::string message) {
  Status status;
  status.code = code;
  status.message = std::move(message);
  return status;
}

inline Status InvalidArgument(std::string message) {
  return MakeStatus(StatusCode::kInvalidArgument, std::move(message));
}

}  // namespace dualmem

// Returns early from the enclosing function when `expr` yields an error.
#define DUALMEM_RETURN_IF_ERROR(expr)           \
  do {                                          \
    ::dualmem::Status dualmem_status_ = (expr); \
    if (!dualmem_status_.ok()) return dualmem_status_; \
  } while (false)

#endif  // DUALMEM_STATUS_H_
