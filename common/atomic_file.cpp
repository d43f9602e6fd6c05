#include "common/atomic_file.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/error.h"

namespace mfsim {

void require_not_directory(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw InputError(fmt::format("{}: is a directory, expected a file", path));
  }
}

void require_writable_file(const std::string& path) {
  require_not_directory(path);
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw InputError(fmt::format("{}: cannot create file: no directory {}", path, dir));
  }
  if (::access(dir.c_str(), W_OK) != 0) {
    throw InputError(fmt::format("{}: cannot create file: {}", path, std::strerror(errno)));
  }
}

namespace {
// Whether process `pid` exists and is not a zombie (a killed writer whose parent has not reaped it
// yet is as finished as one that is gone).
bool process_running(long pid) {
  std::ifstream stat(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!stat || !std::getline(stat, line)) return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
  const auto paren = line.rfind(')');
  const char state = paren != std::string::npos && paren + 2 < line.size() ? line[paren + 2] : 'R';
  return state != 'Z' && state != 'X';
}

// Temporary files `PATH.tmp.PID` of writers that were killed (their process is gone): removed
// when the next writer of PATH starts, so killed runs do not accumulate litter.
void remove_stale_temporaries(const std::string& path) {
  const auto slash = path.find_last_of('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string prefix = (slash == std::string::npos ? path : path.substr(slash + 1)) + ".tmp.";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid_text = name.substr(prefix.size());
    if (pid_text.empty() || pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    const long pid = std::strtol(pid_text.c_str(), nullptr, 10);
    if (pid > 0 && !process_running(pid)) std::filesystem::remove(e.path(), ec);
  }
}
}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
  require_not_directory(path_);
  remove_stale_temporaries(path_);
  tmp_path_ = fmt::format("{}.tmp.{}", path_, static_cast<long>(::getpid()));
  file_ = std::fopen(tmp_path_.c_str(), "wb");
  if (file_ == nullptr) {
    throw InputError(fmt::format("{}: cannot create file: {}", path_, std::strerror(errno)));
  }
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_) std::remove(tmp_path_.c_str());
}

void AtomicFile::write(const void* data, std::size_t bytes) {
  if (bytes == 0) return;
  if (std::fwrite(data, 1, bytes, file_) != bytes) {
    throw std::runtime_error(fmt::format("{}: write failed: {}", path_, std::strerror(errno)));
  }
  bytes_ += bytes;
}

void AtomicFile::commit() {
  if (committed_) return;
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok || std::rename(tmp_path_.c_str(), path_.c_str()) != 0) {
    std::string why = std::strerror(errno);
    std::remove(tmp_path_.c_str());
    throw std::runtime_error(fmt::format("{}: cannot write file: {}", path_, why));
  }
  committed_ = true;
}

void write_file_atomic(const std::string& path, std::string_view text) {
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

std::string read_file(const std::string& path) {
  require_not_directory(path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(fmt::format("{}: cannot open file: {}", path, std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError(fmt::format("{}: read error", path));
  return ss.str();
}

}  // namespace mfsim
