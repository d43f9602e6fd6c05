// mfsim example-trace -o FILE [--seed S] [-q]
#include <cstdio>

#include "apps/mfsim/cli.h"
#include "common/error.h"
#include "traces/example_trace.h"

namespace po = boost::program_options;

namespace mfsim::cli {

int cmd_example_trace(const Args& args) {
  po::options_description opts("options");
  opts.add_options()
      ("output,o", po::value<std::string>()->required(), "trace file to write (.json; payloads go to .bin beside it)")
      ("seed", po::value<std::uint64_t>()->default_value(1), "seed of the operand generator")
      ("quiet,q", "no \"wrote FILE\" line");
  po::variables_map vm;
  if (!parse_or_help("example-trace", "-o FILE.json [--seed S]", args, opts, {}, vm)) return kExitOk;
  const std::string out = vm["output"].as<std::string>();
  write_example_trace(out, vm["seed"].as<std::uint64_t>());
  if (vm.count("quiet") == 0) std::fprintf(stderr, "mfsim: wrote %s\n", out.c_str());
  return kExitOk;
}

}  // namespace mfsim::cli
