// mfsim capture: the PyTorch capture (python/mfsim_torch, docs/pytorch.md) run by the Python
// interpreter found when mfsim was built (MFSIM_PYTHON, /usr/bin/python3 preferred: Debian's
// python3-torch is installed for it), so that another `python3` first on PATH is never used. The
// process becomes `MFSIM_PYTHON -m mfsim_torch capture ARGS...` with the source tree's python/
// folder first on PYTHONPATH: its output and exit status are the capture's own.
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "apps/mfsim/cli.h"
#include "common/error.h"

namespace mfsim::cli {

int cmd_capture(const Args& args) {
  const std::string python = MFSIM_PYTHON;
  const std::string package_dir = std::string(MFSIM_SOURCE_DIR) + "/python";
  const char* install =
      "install Debian's python3-torch and python3-torchvision (scripts/setup.sh does)";
  if (python.empty()) {
    throw InputError(
        fmt::format("capture: no Python 3 interpreter was found when mfsim was built; {}, then "
                    "rebuild mfsim",
                    install));
  }
  if (::access(python.c_str(), X_OK) != 0) {
    throw InputError(
        fmt::format("capture: {} (the Python mfsim was built with): {}; {}, then rebuild mfsim",
                    python, std::strerror(errno), install));
  }
  if (::access((package_dir + "/mfsim_torch/__main__.py").c_str(), R_OK) != 0) {
    throw InputError(
        fmt::format("capture: {}/mfsim_torch: {} (the source tree mfsim was built from)",
                    package_dir, std::strerror(errno)));
  }
  std::string pythonpath = package_dir;
  const char* old = std::getenv("PYTHONPATH");
  if (old != nullptr && *old != '\0') pythonpath += std::string(":") + old;
  ::setenv("PYTHONPATH", pythonpath.c_str(), 1);
  ::setenv("MFSIM_TORCH_PROG", "mfsim", 1);  // usage lines and messages say `mfsim capture`

  std::vector<std::string> argv = {python, "-m", "mfsim_torch", "capture"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execv(python.c_str(), cargv.data());
  throw InputError(fmt::format("capture: cannot run {}: {}", python, std::strerror(errno)));
}

}  // namespace mfsim::cli
