// The shared parts of the command line (cli.h): option parsing and its one-line errors.
#include <fmt/format.h>

#include <boost/program_options.hpp>
#include <cmath>
#include <exception>
#include <iostream>

#include "apps/mfsim/cli.h"
#include "common/error.h"

namespace po = boost::program_options;

namespace mfsim::cli {

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
