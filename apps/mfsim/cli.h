// The mfsim command line: one executable, one function per subcommand (cmd_*.cpp), registered
// in the table in main.cpp. Each subcommand parses its own options with Boost.Program_options.
#pragma once

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/positional_options.hpp>
#include <boost/program_options/variables_map.hpp>
#include <optional>
#include <string>
#include <vector>

namespace mfsim::cli {

using Args = std::vector<std::string>;  // the subcommand's arguments (after its name)

struct Command {
  const char* name;
  const char* summary;
  int (*run)(const Args& args);
};

// Parses `args` into `vm`; returns false (after printing help to stdout) when --help was given.
// Throws InputError with a one-line message on a usage error.
bool parse_or_help(const char* command, const char* synopsis, const Args& args,
                   const boost::program_options::options_description& options,
                   const boost::program_options::positional_options_description& positional,
                   boost::program_options::variables_map& vm);

// `s` as a number when the whole of it is one finite number (std::stod's syntax), else nothing:
// option values such as seconds and areas, checked against their range by the caller.
std::optional<double> parse_finite_number(const std::string& s);

int cmd_inspect(const Args& args);
int cmd_example_trace(const Args& args);
int cmd_simulate(const Args& args);
int cmd_trace(const Args& args);
int cmd_compare(const Args& args);
int cmd_train(const Args& args);
int cmd_sweep(const Args& args);
int cmd_capture(const Args& args);

}  // namespace mfsim::cli
