// Child processes of the CLI: `compare` and `sweep` run every simulation as its own `mfsim
// simulate` process (SystemC elaborates once per process; separate processes also run in
// parallel and survive each other's crashes).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace mfsim::cli {

std::string self_executable();  // /proc/self/exe

// Starts argv[0] with the arguments; stdout goes to /dev/null, stderr to `log`.
pid_t spawn_process(const std::vector<std::string>& argv, const std::string& log);

// The last non-empty line of a child's log with mfsim's "mfsim: error: " style prefix removed.
std::string last_error_line(const std::string& log_path);

}  // namespace mfsim::cli
