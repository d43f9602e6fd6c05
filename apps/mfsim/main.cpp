// mfsim: a thin command line over the mfsim libraries. Exit codes: 0 ok, 1 failure, 2 bad usage
// or bad input, 3 verification mismatch (common/error.h).
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <csignal>
#include <cmath>
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

std::optional<double> parse_finite_number(const std::string& s) {
  try {
    std::size_t used = 0;
    const double v = std::stod(s, &used);
    if (used == s.size() && std::isfinite(v)) return v;
  } catch (const std::exception&) {
  }
  return std::nullopt;
}

bool parse_or_help(const char* command, const char* synopsis, const Args& args,
                   const po::options_description& options,
                   const po::positional_options_description& positional, po::variables_map& vm) {
  po::options_description all;
  all.add(options).add_options()("help,h", "show this help");
  try {
    po::store(po::command_line_parser(args).options(all).positional(positional).run(), vm);
    if (vm.count("help") != 0) {
      std::cout << "usage: mfsim " << command << " " << synopsis << "\n\n" << all << "\n";
      return false;
    }
    po::notify(vm);
    // No option of mfsim takes an empty value (an empty path, list or number is a slip, e.g. an
    // unset shell variable): one line naming the option.
    for (const auto& [name, value] : vm) {
      const po::option_description* d = all.find_nothrow(name, false);
      if (value.defaulted() || d == nullptr || d->semantic()->max_tokens() == 0) continue;  // flags hold ""
      const auto* s = boost::any_cast<std::string>(&value.value());
      const auto* list = boost::any_cast<std::vector<std::string>>(&value.value());
      bool empty = s != nullptr && s->empty();
      if (list != nullptr) {
        for (const auto& item : *list) empty = empty || item.empty();
      }
      if (empty) {
        throw InputError(fmt::format("{}: --{}: empty value; see 'mfsim {} --help'", command, name, command));
      }
    }
  } catch (const po::required_option& e) {
    std::string name = e.get_option_name();  // "--trace"
    std::string bare = name.substr(name.find_first_not_of('-'));
    for (unsigned i = 0; i < positional.max_total_count() && i < 8; ++i) {
      if (positional.name_for_position(i) == bare) {
        throw InputError(fmt::format("{}: missing argument {}; see 'mfsim {} --help'", command,
                                     bare, command));
      }
    }
    throw InputError(fmt::format("{}: missing option {}; see 'mfsim {} --help'", command, name,
                                 command));
  } catch (const po::error& e) {
    throw InputError(fmt::format("{}: {}; see 'mfsim {} --help'", command, e.what(), command));
  }
  return true;
}

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
