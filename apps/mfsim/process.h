// Child processes of the CLI: `compare` and `sweep` run every simulation as its own `mfsim
// simulate` process (SystemC elaborates once per process; separate processes also run in
// parallel and survive each other's crashes).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace mfsim::cli {

// The mfsim program children run: /proc/self/exe, or what set_executable() gave (a process
// that is not mfsim, such as the Python interpreter running the mfsim module).
std::string self_executable();
void set_executable(const std::string& path);
// A stop request (below) ends the process by its signal (the command line), or, when on, throws
// mfsim::Cancelled (common/cancel.h) after the children are stopped (the Python module).
void set_stop_by_exception(bool on);

// Starts argv[0] with the arguments; stdout goes to /dev/null, stderr to `log`.
pid_t spawn_process(const std::vector<std::string>& argv, const std::string& log);

// The last non-empty line of a child's log with mfsim's "mfsim: error: " style prefix removed.
std::string last_error_line(const std::string& log_path);

}  // namespace mfsim::cli

#include <functional>

namespace mfsim::cli {

// One child's outcome.
struct ChildResult {
  int exit_code = 0;        // the child's exit code (kExitFailure when killed)
  bool timed_out = false;   // killed after the pool's timeout
  int signal = 0;           // the signal that ended it, if any
  double wall_seconds = 0;
};

// Runs child processes at most `parallel` at a time (`timeout` seconds each, 0: none); used by
// compare (every array at once) and sweep (-j points at once, --point-timeout). A stop request
// (SIGTERM, SIGINT, SIGHUP) while the pool runs stops every child (TERM, then KILL after 5 s),
// calls `on_stop(signal)` and ends the process by the same signal (or throws Cancelled: set_stop_by_exception).
class ProcessPool {
 public:
  struct Callbacks {
    // Called just before job i starts; returns its argv and the log path for its stderr.
    std::function<std::pair<std::vector<std::string>, std::string>(std::size_t i)> start;
    std::function<void(std::size_t i, const ChildResult& r)> done;  // as each job ends
    std::function<void()> tick;                                      // between polls (progress)
    std::function<void(int signal)> on_stop;                        // after the children are stopped
  };
  ProcessPool(int parallel, double timeout) : parallel_(parallel), timeout_(timeout) {}
  void run(std::size_t jobs, const Callbacks& cb);

 private:
  int parallel_;
  double timeout_;
};

}  // namespace mfsim::cli
