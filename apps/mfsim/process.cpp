#include "apps/mfsim/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <thread>

#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "common/atomic_file.h"
#include "common/cancel.h"
#include "common/error.h"

extern char** environ;

namespace mfsim::cli {

namespace {
std::string g_executable;        // set_executable(): the mfsim program when this process is not it
bool g_stop_by_exception = false;  // set_stop_by_exception()
}  // namespace

void set_executable(const std::string& path) { g_executable = path; }
void set_stop_by_exception(bool on) { g_stop_by_exception = on; }

std::string self_executable() {
  if (!g_executable.empty()) return g_executable;
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) throw std::runtime_error("cannot locate the mfsim executable (/proc/self/exe)");
  return p.string();
}

pid_t spawn_process(const std::vector<std::string>& argv, const std::string& log) {
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0].c_str(), &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error(fmt::format("cannot start {}: {}", argv[0], std::strerror(rc)));
  return pid;
}

std::string last_error_line(const std::string& log_path) {
  std::string log;
  try {
    log = read_file(log_path);
  } catch (...) {
    return "no log";
  }
  while (!log.empty() && (log.back() == '\n' || log.back() == '\r')) log.pop_back();
  auto nl = log.rfind('\n');
  std::string line = nl == std::string::npos ? log : log.substr(nl + 1);
  for (const char* p : {"mfsim: error: ", "mfsim: mismatch: ", "mfsim: failure: "}) {
    if (line.rfind(p, 0) == 0) return line.substr(std::strlen(p));
  }
  return line.empty() ? "terminated without a message" : line;
}

namespace {
// A stop request (SIGTERM, SIGINT, SIGHUP) seen while a pool runs.
volatile std::sig_atomic_t g_stop_signal = 0;
extern "C" void on_stop_signal(int sig) { g_stop_signal = sig; }
}  // namespace

namespace {
// waitpid that retries when a signal interrupts it; -1 on any other error.
pid_t wait_child(pid_t pid, int* status, int options) {
  pid_t r = 0;
  do {
    r = ::waitpid(pid, status, options);
  } while (r < 0 && errno == EINTR);
  return r;
}
}  // namespace

void ProcessPool::run(std::size_t jobs, const Callbacks& cb) {
  struct Running {
    std::size_t index;
    pid_t pid;
    std::chrono::steady_clock::time_point start;
  };
  std::vector<Running> running;
  // Stop requests while the pool runs; the previous handlers are restored when it returns.
  g_stop_signal = 0;
  struct sigaction stop_action {};
  stop_action.sa_handler = on_stop_signal;
  sigemptyset(&stop_action.sa_mask);
  const int stop_signals[] = {SIGTERM, SIGINT, SIGHUP};
  struct sigaction saved[3];
  for (int i = 0; i < 3; ++i) sigaction(stop_signals[i], &stop_action, &saved[i]);
  auto restore = [&] {
    for (int i = 0; i < 3; ++i) sigaction(stop_signals[i], &saved[i], nullptr);
  };
  auto stop_children = [&]() {
    for (auto& r : running) ::kill(r.pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    for (auto& r : running) {
      int status = 0;
      while (wait_child(r.pid, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          ::kill(r.pid, SIGKILL);
          wait_child(r.pid, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
    running.clear();
  };
  auto stop_and_raise = [&](int sig) {
    stop_children();
    if (cb.on_stop) cb.on_stop(sig);
    restore();
    if (g_stop_by_exception) throw Cancelled(sig);
    signal(sig, SIG_DFL);
    ::raise(sig);
  };
  std::size_t next = 0;
  try {
    while (next < jobs || !running.empty()) {
      if (g_stop_signal != 0) stop_and_raise(g_stop_signal);
      while (next < jobs && static_cast<int>(running.size()) < parallel_ && g_stop_signal == 0) {
        auto [argv, log] = cb.start(next);
        running.push_back({next, spawn_process(argv, log), std::chrono::steady_clock::now()});
        ++next;
      }
      bool reaped = false;
      for (std::size_t i = 0; i < running.size();) {
        int status = 0;
        pid_t r = wait_child(running[i].pid, &status, WNOHANG);
        ChildResult res;
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - running[i].start).count();
        if (r == 0 && timeout_ > 0 && wall > timeout_) {
          ::kill(running[i].pid, SIGKILL);
          r = wait_child(running[i].pid, &status, 0);
          res.timed_out = true;
        }
        if (r < 0) {  // the child cannot be waited for (ECHILD): count it as failed, never spin
          status = 0;
          res.exit_code = kExitFailure;
        }
        if (r == running[i].pid || r < 0) {
          res.wall_seconds = wall;
          if (r > 0) {
            res.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailure;
            res.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
          }
          const std::size_t index = running[i].index;
          running.erase(running.begin() + static_cast<std::ptrdiff_t>(i));
          if (cb.done) cb.done(index, res);
          reaped = true;
          continue;
        }
        ++i;
      }
      if (cb.tick) cb.tick();
      if (!reaped) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
  } catch (...) {  // a child that cannot be started: stop the others, then report
    stop_children();
    restore();
    throw;
  }
  // A stop request that arrived as the last child ended still stops the run.
  if (g_stop_signal != 0) stop_and_raise(g_stop_signal);
  restore();
}

}  // namespace mfsim::cli
