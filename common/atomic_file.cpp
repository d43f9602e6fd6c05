#include "common/atomic_file.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <signal.h>

#include <fcntl.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "common/error.h"

namespace mfsim {

void require_not_directory(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    throw InputError(fmt::format("{}: is a directory, expected a file", path));
  }
}

namespace {
std::string dir_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

// Follows symbolic links (at most 40, as the kernel does) to the path the data goes to. A
// dangling link gives its target, which the write then creates.
std::string follow_links(const std::string& path) {
  std::string p = path;
  for (int hops = 0; hops < 40; ++hops) {
    struct stat st {};
    if (::lstat(p.c_str(), &st) != 0 || !S_ISLNK(st.st_mode)) return p;
    char buf[4096];
    const ssize_t n = ::readlink(p.c_str(), buf, sizeof buf);
    if (n <= 0 || static_cast<std::size_t>(n) >= sizeof buf) return p;
    std::string target(buf, static_cast<std::size_t>(n));
    p = target[0] == '/' ? target : dir_of(p) + "/" + target;
  }
  throw InputError(fmt::format("{}: cannot create file: too many levels of symbolic links", path));
}

// The files this run reads (inputs) and the outputs it has open: no output may be one of them.
struct FileEntry {
  dev_t dev = 0;
  ino_t ino = 0;
  bool exists = false;   // dev and ino are valid
  std::string name;      // as the user named it
  std::string canonical; // outputs that do not exist yet: the absolute path they will have
  bool output = false;
  bool regular = true;   // outputs written through (devices, FIFOs) may be named twice
};
std::mutex registry_mutex;
std::vector<FileEntry>& registry() {
  static std::vector<FileEntry> entries;
  return entries;
}

FileEntry entry_for(const std::string& name, const std::string& target, bool output) {
  FileEntry e;
  e.name = name;
  e.output = output;
  struct stat st {};
  if (::stat(target.c_str(), &st) == 0) {
    e.exists = true;
    e.dev = st.st_dev;
    e.ino = st.st_ino;
    e.regular = S_ISREG(st.st_mode);
  } else {
    std::error_code ec;
    e.canonical = std::filesystem::weakly_canonical(std::filesystem::absolute(target, ec), ec).string();
  }
  return e;
}

bool same_file(const FileEntry& a, const FileEntry& b) {
  if (a.exists && b.exists) return a.dev == b.dev && a.ino == b.ino;
  return !a.exists && !b.exists && !a.canonical.empty() && a.canonical == b.canonical;
}

// Throws if `e` (an output about to be written) is an input of this run or an open output.
void check_output_against_registry(const FileEntry& e) {
  for (const FileEntry& r : registry()) {
    if (!same_file(r, e)) continue;
    if (!r.output) {
      throw InputError(fmt::format("{}: is the same file as the input {}; refusing to overwrite an input", e.name,
                                   r.name));
    }
    if (r.regular && e.regular) {
      throw InputError(fmt::format("{}: is the same file as the output {}; name each output once", e.name, r.name));
    }
  }
}
// The registry entry of output `path` (symbolic links followed: its target), checked against the
// inputs and open outputs; throws InputError for an empty name or a clash.
FileEntry checked_output(const std::string& path) {
  if (path.empty()) throw InputError("an output file's name is empty");
  const FileEntry e = entry_for(path, follow_links(path), true);
  std::lock_guard<std::mutex> lock(registry_mutex);
  check_output_against_registry(e);
  return e;
}
}  // namespace

void note_input(const std::string& path) {
  const FileEntry e = entry_for(path, path, false);
  if (!e.exists) return;  // the reader reports a missing file in its own words
  std::lock_guard<std::mutex> lock(registry_mutex);
  for (const FileEntry& r : registry()) {
    if (r.output && same_file(r, e)) {
      throw InputError(fmt::format("{}: is the same file as the output {}; refusing to overwrite an input", r.name,
                                   path));
    }
  }
  registry().push_back(e);
}

void require_not_input(const std::string& path) { (void)checked_output(path); }

std::string output_target(const std::string& path) { return follow_links(path); }

void require_writable_file(const std::string& path) {
  require_not_directory(path);
  const std::string target = follow_links(path);
  require_not_directory(target);
  require_not_input(path);
  const std::string dir = dir_of(target);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    throw InputError(fmt::format("{}: cannot create file: no directory {}", path, dir));
  }
  // Try it: permissions alone do not tell (root passes access() under /proc and /sys, where no
  // file can be created). A file this creates is removed again; an existing one is not touched.
  const bool existed = ::stat(target.c_str(), &st) == 0;
  if (existed && !S_ISREG(st.st_mode)) {
    throw InputError(fmt::format("{}: cannot write here: not a regular file (this output is written whole, then renamed)",
                                 path));
  }
  const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0666);
  if (fd < 0) throw InputError(fmt::format("{}: cannot create file: {}", path, std::strerror(errno)));
  ::close(fd);
  if (!existed) ::unlink(target.c_str());
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
  if (path_.empty()) throw InputError("an output file's name is empty");
  require_not_directory(path_);
  target_ = follow_links(path_);
  require_not_directory(target_);
  FileEntry entry = checked_output(path_);
  struct stat st {};
  const bool exists = ::stat(target_.c_str(), &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) {
    // A character device or a FIFO: written through, in place (there is nothing to rename).
    if (!S_ISCHR(st.st_mode) && !S_ISFIFO(st.st_mode)) {
      throw InputError(fmt::format("{}: cannot write here: not a regular file, character device or FIFO", path_));
    }
    file_ = std::fopen(target_.c_str(), "wb");
  } else {
    remove_stale_temporaries(target_);
    tmp_path_ = fmt::format("{}.tmp.{}", target_, static_cast<long>(::getpid()));
    file_ = std::fopen(tmp_path_.c_str(), "wb");
    // A file replaced keeps its permissions, as cp keeps them.
    if (file_ != nullptr && exists) (void)::fchmod(::fileno(file_), st.st_mode & 07777);
  }
  if (file_ == nullptr) {
    throw InputError(fmt::format("{}: cannot create file: {}", path_, std::strerror(errno)));
  }
  std::lock_guard<std::mutex> lock(registry_mutex);
  registry().push_back(std::move(entry));
}

AtomicFile::~AtomicFile() {
  if (file_ != nullptr) std::fclose(file_);
  if (!committed_ && !tmp_path_.empty()) std::remove(tmp_path_.c_str());
  std::lock_guard<std::mutex> lock(registry_mutex);
  auto& r = registry();
  for (auto it = r.rbegin(); it != r.rend(); ++it) {
    if (it->output && it->name == path_) {
      r.erase(std::next(it).base());
      break;
    }
  }
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
  if (tmp_path_.empty()) {  // written through: flush and close (devices and FIFOs have no fsync)
    const bool ok = std::fflush(file_) == 0;
    const std::string why = std::strerror(errno);
    const bool closed = std::fclose(file_) == 0;
    file_ = nullptr;
    if (!ok || !closed) throw std::runtime_error(fmt::format("{}: cannot write file: {}", path_, why));
    committed_ = true;
    return;
  }
  bool ok = std::fflush(file_) == 0 && ::fsync(::fileno(file_)) == 0;
  ok = (std::fclose(file_) == 0) && ok;
  file_ = nullptr;
  if (!ok || std::rename(tmp_path_.c_str(), target_.c_str()) != 0) {
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
