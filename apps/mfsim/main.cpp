// mfsim: a thin command line over the mfsim libraries. Exit codes: 0 ok, 1 failure, 2 bad usage
// or bad input, 3 verification mismatch (common/error.h).
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <iostream>
#include <unistd.h>

#include "apps/mfsim/cli.h"
#include "common/error.h"
#include "common/sanitizer_options.h"
#include "sim/pe_type.h"
#include "training/exact_gemm.h"

namespace po = boost::program_options;


namespace mfsim::cli {

namespace {

const Command kCommands[] = {
    {"train", "train a network (FP32, BF16, FP8, INT8, INT4 or ALS-POTQ); accuracy report, optional step trace", cmd_train},
    {"inspect", "validate a trace and summarise its GEMMs", cmd_inspect},
    {"trace", "write a shape-only training trace of a known network or a SCALE-Sim topology", cmd_trace},
    {"simulate", "replay a trace on one systolic array configuration; JSON report", cmd_simulate},
    {"compare", "the same trace on every array type (or those --arrays names): cycles, energy, savings", cmd_compare},
    {"sweep", "a grid of array parameters, each point its own process, in parallel or over MPI", cmd_sweep},
    {"capture", "capture a PyTorch model's training step as a trace (python/mfsim_torch)", cmd_capture},
    {"example-trace", "write the small example trace with payloads", cmd_example_trace},
};

void print_usage() {
  std::printf(
      "mfsim %s: cycle-accurate simulator and energy estimator for multiplication-free DNN "
      "training\n\nusage: mfsim <command> [options]   (mfsim <command> --help for its options)\n\n"
      "commands:\n",
      MFSIM_VERSION);
  for (const auto& c : kCommands) std::printf("  %-15s %s\n", c.name, c.summary);
  std::printf("\narrays (array.kind, from the PE registry): %s\n", mfsim::pe_type_names().c_str());
  std::printf(
      "\noptions:\n  -h, --help       this help\n  --version        print the version\n\n"
      "exit codes: 0 ok, 1 failure, 2 bad usage or bad input, 3 verification mismatch\n");
}

}  // namespace

}  // namespace mfsim::cli

int main(int argc, char** argv) {
  using namespace mfsim;
  // A file-size limit (or a full file system) is then a write error with a message, not a
  // signal that kills the process mid-write.
  std::signal(SIGXFSZ, SIG_IGN);
  if (argc < 2) {
    cli::print_usage();
    return kExitBadInput;
  }
  std::string name = argv[1];
  if (name == "--help" || name == "-h" || name == "help") {
    cli::print_usage();
    return kExitOk;
  }
  if (name == "--version") {
    std::printf("mfsim %s\n", MFSIM_VERSION);
    return kExitOk;
  }
  if (name == "train") {
    // OpenBLAS picks its kernels as it loads, and falls back to a generic SSE3 core on CPU models
    // newer than the library: run again with a core that uses the CPU's AVX2 or AVX-512 named in
    // OPENBLAS_CORETYPE, unless the user named one (docs/training-core.md). If the re-execution
    // fails, training goes on with OpenBLAS's own choice.
    const std::string core = preferred_blas_core();
    if (!core.empty()) {
      const std::string picked = blas_core();
      if (setenv("OPENBLAS_CORETYPE", core.c_str(), 1) == 0 && setenv(kBlasFallbackEnv, picked.c_str(), 1) == 0) {
        execv("/proc/self/exe", argv);
      }
      unsetenv("OPENBLAS_CORETYPE");
      unsetenv(kBlasFallbackEnv);
    }
  }
  const cli::Command* cmd = nullptr;
  for (const auto& c : cli::kCommands) {
    if (name == c.name) cmd = &c;
  }
  try {
    if (cmd == nullptr) {
      std::string names;
      for (const auto& c : cli::kCommands) names += names.empty() ? c.name : fmt::format("|{}", c.name);
      throw InputError(fmt::format("unknown command \"{}\"; expected {} (see 'mfsim --help')", name, names));
    }
    return cmd->run(cli::Args(argv + 2, argv + argc));
  } catch (const InputError& e) {
    std::fprintf(stderr, "mfsim: error: %s\n", e.what());
    return kExitBadInput;
  } catch (const VerificationError& e) {
    std::fprintf(stderr, "mfsim: mismatch: %s\n", e.what());
    return kExitMismatch;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mfsim: failure: %s\n", e.what());
    return kExitFailure;
  }
}
