// Helpers shared by the test files: temporary directories, file I/O, running the mfsim CLI.
#pragma once

#include <cstdint>
#include <string>

namespace mfsim::test {

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string slurp(const std::string& path);
void spit(const std::string& path, const std::string& content);
bool file_exists(const std::string& path);

struct RunResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs build/mfsim with the given argument string (shell-quoted by the caller).
RunResult run_mfsim(const std::string& args);

std::string source_dir();  // the repository root (compile definition)
std::string example_trace();  // traces/examples/mlp-tiny.json in the source tree

}  // namespace mfsim::test
