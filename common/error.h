// Error types shared by every layer of mfsim.
//
// Contract: anything a user can cause (a malformed trace, config, table, data file or command
// line) is reported by throwing InputError with one complete line that names the file and the
// field, record or line. The CLI prints it and exits 2. VerificationError is a bit-exactness
// mismatch (exit 3). Everything else is a bug or an environment failure (exit 1).
#pragma once

#include <stdexcept>
#include <string>

namespace mfsim {

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class VerificationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Process exit codes of the mfsim command line.
enum ExitCode : int { kExitOk = 0, kExitFailure = 1, kExitBadInput = 2, kExitMismatch = 3 };

}  // namespace mfsim
