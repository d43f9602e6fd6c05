// Helpers shared by the test files: temporary directories, file I/O, running the mfsim CLI.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

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

// Runs build/mfsim with the given argument string (shell-quoted by the caller). Its stderr is
// returned without ASan's benign stack-switch note (without_sanitizer_stack_notes).
RunResult run_mfsim(const std::string& args);
std::string without_sanitizer_stack_notes(const std::string& err);

// A tiny Fashion-MNIST-shaped data set in `dir` (IDX files, the images gzipped): 28x28 images of
// 10 classes, a bright bar whose row encodes the label, plus noise; fixed seed.
void write_dataset(const std::string& dir, int n_train, int n_test);
// An IDX file of unsigned bytes with these dimensions, and a gzip writer (for malformed files).
std::string idx(const std::vector<int>& dims, const std::vector<std::uint8_t>& data);
void write_gz(const std::string& path, const std::string& bytes);

// The same float bits, element for element (so -0 differs from +0 and a NaN's payload counts).
bool same_bits(const std::vector<float>& a, const std::vector<float>& b);
// Values of mixed magnitudes (2^-max_exp .. 2^max_exp) and signs, so that the order of sums shows
// in the bits: of each `one_in` draws, one is +0, one -0 and, with `nan`, one a NaN.
std::vector<float> mixed_values(std::mt19937& rng, std::size_t n, int max_exp, int one_in, bool nan);

std::string source_dir();  // the repository root (compile definition)
std::string example_trace();  // traces/examples/mlp-tiny.json in the source tree

}  // namespace mfsim::test
