#include "tests/test_util.h"

#include "common/sanitizer_options.h"

#include <sys/wait.h>
#include <zlib.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

#include "models/rng.h"

namespace mfsim::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string templ = std::string(base != nullptr ? base : "/tmp") + "/mfsim-test-XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void spit(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

bool file_exists(const std::string& path) { return std::filesystem::exists(path); }

RunResult run_mfsim(const std::string& args) {
  TempDir tmp;
  std::string out = tmp.file("stdout"), err = tmp.file("stderr");
  std::string cmd = std::string(MFSIM_BINARY) + " " + args + " >" + out + " 2>" + err + " </dev/null";
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = without_sanitizer_stack_notes(slurp(err));
  return r;
}

std::string without_sanitizer_stack_notes(const std::string& err) {
  // ASan's one benign note when an exception is thrown after SystemC's coroutines switched
  // stacks: "==PID==WARNING: ASan is ignoring requested __asan_handle_no_return: ...", then
  // "False positive error reports may follow" and "For details see ...". Anything else stays.
  const std::string marker = "WARNING: ASan is ignoring requested __asan_handle_no_return";
  const auto at = err.find(marker);
  if (at == std::string::npos) return err;
  const auto begin = err.rfind('\n', at);
  const auto start = begin == std::string::npos ? 0 : begin + 1;
  auto end = err.find("For details see ", at);
  if (end == std::string::npos) return err;
  end = err.find('\n', end);
  return err.substr(0, start) + (end == std::string::npos ? "" : err.substr(end + 1));
}

std::string source_dir() { return MFSIM_SOURCE_DIR; }

std::string example_trace() { return source_dir() + "/traces/examples/mlp-tiny.json"; }

std::string idx(const std::vector<int>& dims, const std::vector<std::uint8_t>& data) {
  std::string s = {0, 0, 8, static_cast<char>(dims.size())};
  for (int d : dims) {
    for (int shift : {24, 16, 8, 0}) s.push_back(static_cast<char>((d >> shift) & 0xFF));
  }
  s.append(data.begin(), data.end());
  return s;
}

void write_gz(const std::string& path, const std::string& bytes) {
  gzFile f = gzopen(path.c_str(), "wb");
  gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size()));
  gzclose(f);
}

void write_dataset(const std::string& dir, int n_train, int n_test) {
  SplitMix64 rng(5);
  for (auto [prefix, n] : {std::pair{std::string("train"), n_train}, std::pair{std::string("t10k"), n_test}}) {
    std::vector<std::uint8_t> px, lb;
    for (int i = 0; i < n; ++i) {
      int label = static_cast<int>(rng.below(10));
      lb.push_back(static_cast<std::uint8_t>(label));
      for (int p = 0; p < 784; ++p) {
        int row = p / 28;
        px.push_back(static_cast<std::uint8_t>((row / 3 == label ? 200 : 0) + rng.below(40)));
      }
    }
    write_gz(dir + "/" + prefix + "-images-idx3-ubyte.gz", idx({n, 28, 28}, px));
    spit(dir + "/" + prefix + "-labels-idx1-ubyte", idx({n}, lb));  // plain IDX works too
  }
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<float> mixed_values(std::mt19937& rng, std::size_t n, int max_exp, int one_in, bool nan) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> e(-max_exp, max_exp), pick(0, one_in - 1);
  std::vector<float> v(n);
  for (auto& x : v) {
    const int k = pick(rng);
    x = k == 0 ? 0.0f : k == 1 ? -0.0f : nan && k == 2 ? NAN : std::ldexp(u(rng), e(rng));
  }
  return v;
}

}  // namespace mfsim::test

