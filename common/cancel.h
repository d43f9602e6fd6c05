// Cooperative cancellation of a long run inside a process that outlives it (the Python module:
// Ctrl-C stops a running simulation or sweep and raises KeyboardInterrupt, the interpreter goes
// on). A signal handler calls request_cancel(); the replay checks between GEMMs and throws
// Cancelled, which unwinds through the ordinary error paths (no output is half written: reports
// are committed only at the end). The command line never requests it: a signal ends mfsim.
#pragma once

#include <atomic>
#include <stdexcept>

namespace mfsim {

class Cancelled : public std::runtime_error {
 public:
  explicit Cancelled(int signal) : std::runtime_error("cancelled by a signal"), signal_(signal) {}
  int signal() const { return signal_; }

 private:
  int signal_;
};

namespace detail {
inline std::atomic<int>& cancel_signal() {
  static std::atomic<int> s{0};
  return s;
}
}  // namespace detail

// Async-signal-safe (a lock-free atomic store).
inline void request_cancel(int signal) noexcept { detail::cancel_signal().store(signal, std::memory_order_relaxed); }
inline void clear_cancel() noexcept { detail::cancel_signal().store(0, std::memory_order_relaxed); }
inline int cancel_requested() noexcept { return detail::cancel_signal().load(std::memory_order_relaxed); }
inline void throw_if_cancelled() {
  if (const int s = cancel_requested(); s != 0) throw Cancelled(s);
}

static_assert(std::atomic<int>::is_always_lock_free, "request_cancel must be async-signal-safe");

}  // namespace mfsim
