#include "apps/mfsim/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spawn.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "common/atomic_file.h"

extern char** environ;

namespace mfsim::cli {

std::string self_executable() {
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

}  // namespace mfsim::cli
