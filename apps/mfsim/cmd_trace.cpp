// mfsim trace --network NAME --batch B [--image HxW] [--seq L] [--tokens N] [--vocab V]
//             [--phases fwd,bwd_data,bwd_weight] [--format F] [--ops [--optimizer sgd|adam]] -o FILE
// mfsim trace --scalesim-topology FILE.csv [--gemm] [--training] --batch B -o FILE
// mfsim trace --list-networks
#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "apps/mfsim/cli.h"
#include "common/error.h"
#include "traces/network_ops.h"
#include "traces/networks.h"
#include "traces/trace_writer.h"

namespace po = boost::program_options;

namespace mfsim::cli {

namespace {

// A positive integer option, at most 2^31 - 1 (the trace format's largest dimension).
int positive(const po::variables_map& vm, const char* name, int fallback) {
  if (vm.count(name) == 0) return fallback;
  const std::string& s = vm[name].as<std::string>();
  std::size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(s, &used);
  } catch (const std::out_of_range&) {
    used = 0;
    v = -1;
    if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
      throw InputError(fmt::format("trace: --{}: {} is too large (at most {})", name, s, kTraceMaxDim));
    }
  } catch (...) {
    used = 0;
  }
  if (used == 0 || used != s.size() || v < 1) {
    throw InputError(fmt::format("trace: --{}: expected a positive integer, got \"{}\"", name, s));
  }
  if (v > kTraceMaxDim) throw InputError(fmt::format("trace: --{}: {} is too large (at most {})", name, v, kTraceMaxDim));
  return static_cast<int>(v);
}

// Every GEMM dimension and repeat count is constant or proportional to the batch: the largest
// batch whose GEMMs fit the trace format, from the layers at batch 1 and 2.
std::int64_t largest_batch(const std::vector<LayerGemm>& b1, const std::vector<LayerGemm>& b2) {
  std::int64_t limit = kTraceMaxDim;
  for (std::size_t i = 0; i < b1.size() && i < b2.size(); ++i) {
    const std::int64_t d1[] = {b1[i].m, b1[i].n, b1[i].k, b1[i].repeat};
    const std::int64_t d2[] = {b2[i].m, b2[i].n, b2[i].k, b2[i].repeat};
    for (int j = 0; j < 4; ++j) {
      if (d2[j] != d1[j]) limit = std::min(limit, kTraceMaxDim / d1[j]);
    }
  }
  return limit;
}

}  // namespace

int cmd_trace(const Args& args) {
  po::options_description opts("options");
  opts.add_options()
      ("network", po::value<std::string>(), "known network (see --list-networks)")
      ("scalesim-topology", po::value<std::string>(), "SCALE-Sim topology CSV to import")
      ("gemm", "the topology file is in SCALE-Sim's GEMM form (Layer name, M, N, K)")
      ("training", "topology import: add the backward GEMMs (default: forward only, as SCALE-Sim)")
      ("batch", po::value<std::string>(), "images (CNNs) or sentences (Transformer) per step")
      ("image", po::value<std::string>(), "CNN input size HxW (default 224x224)")
      ("seq", po::value<std::string>(), "Transformer tokens per sentence (default 128)")
      ("tokens", po::value<std::string>(), "Transformer tokens per batch (sets --batch = tokens / seq)")
      ("vocab", po::value<std::string>(), "Transformer output vocabulary (default 32000)")
      ("phases", po::value<std::string>()->default_value("fwd,bwd_data,bwd_weight"), "phases to emit")
      ("format", po::value<std::string>()->default_value("pot4"), "operand format of the records: pot4|int8|fp32|int4|fp8e4m3|fp8e5m2|bf16|apot")
      ("output,o", po::value<std::string>(), "trace file to write (.json)")
      ("list-networks", "list the known networks")
      ("ops", "also record the step's work outside the GEMMs (normalization, activations, pooling, softmax, "
              "loss, optimizer; docs/non-gemm.md): known networks only, all three phases")
      ("optimizer", po::value<std::string>(), "with --ops: the update's optimizer, sgd (with momentum) or adam "
                                              "(default: the network's own, sgd for the CNNs and adam for the Transformers)")
      ("quiet,q", "no \"wrote FILE\" line");
  po::variables_map vm;
  if (!parse_or_help("trace", "--network NAME --batch B -o FILE | --scalesim-topology FILE.csv --batch B -o FILE",
                     args, opts, {}, vm)) {
    return kExitOk;
  }
  if (vm.count("list-networks") != 0) {
    for (const auto& n : known_networks()) std::printf("%-18s %s\n", n.name, n.description);
    std::printf("%-18s %s\n", "transformer[:...]",
                "decoder-only Transformer of the training core: transformer:layers=2,d=64,heads=4,ff=256,seq=32,vocab=17 "
                "(any subset; --batch sequences)");
    return kExitOk;
  }
  const bool net = vm.count("network") != 0, topo = vm.count("scalesim-topology") != 0;
  if (net == topo) throw InputError("trace: give exactly one of --network and --scalesim-topology");
  if (vm.count("output") == 0) throw InputError("trace: missing option --output; see 'mfsim trace --help'");
  // Options that conflict or do not apply to the chosen workload are errors, not ignored.
  if (vm.count("tokens") != 0 && vm.count("batch") != 0) {
    throw InputError("trace: --tokens and --batch: give one (--tokens sets the batch to tokens / --seq)");
  }
  if (net) {
    for (const char* flag : {"gemm", "training"}) {
      if (vm.count(flag) != 0) throw InputError(fmt::format("trace: --{}: applies only to --scalesim-topology", flag));
    }
    const std::string name = vm["network"].as<std::string>();
    const bool transformer = name == "transformer-base" || is_transformer_spec(name);
    bool known = transformer;
    for (const auto& n : known_networks()) known = known || name == n.name;
    for (const char* flag : {"seq", "tokens", "vocab", "image"}) {
      const bool applies = std::string(flag) == "image" ? !transformer : transformer;
      if (known && !applies && vm.count(flag) != 0) {
        throw InputError(fmt::format("trace: --{}: applies only to {}, not {}", flag,
                                     transformer ? "CNNs" : "Transformers (transformer-base, transformer:...)", name));
      }
    }
  } else {
    for (const char* flag : {"seq", "tokens", "vocab", "image"}) {
      if (vm.count(flag) != 0) {
        throw InputError(fmt::format("trace: --{}: applies only to --network, not --scalesim-topology", flag));
      }
    }
  }
  NumFormat format{};
  if (!parse_num_format(vm["format"].as<std::string>(), &format)) {
    throw InputError(fmt::format("trace: --format: unknown value \"{}\"; expected {}",
                                 vm["format"].as<std::string>(), num_format_choices()));
  }
  PhaseSelection phases{false, false, false};
  {
    std::stringstream ss(vm["phases"].as<std::string>());
    std::string p;
    while (std::getline(ss, p, ',')) {
      if (p.empty()) continue;
      if (p == "fwd") phases.fwd = true;
      else if (p == "bwd_data") phases.bwd_data = true;
      else if (p == "bwd_weight") phases.bwd_weight = true;
      else throw InputError(fmt::format("trace: --phases: unknown phase \"{}\"; expected fwd|bwd_data|bwd_weight", p));
    }
    if (!phases.fwd && !phases.bwd_data && !phases.bwd_weight) {
      throw InputError("trace: --phases: no phase given; expected one or more of fwd,bwd_data,bwd_weight");
    }
  }
  NetworkOptions opt;
  if (net && is_transformer_spec(vm["network"].as<std::string>())) {
    // A Transformer spec carries its own sequence length and vocabulary.
    for (const char* flag : {"seq", "vocab"}) {
      if (vm.count(flag) != 0) {
        throw InputError(fmt::format("trace: --{}: a transformer spec sets it (e.g. transformer:{}=N)", flag, flag));
      }
    }
    opt.seq = parse_transformer_spec(vm["network"].as<std::string>()).seq;
  }
  opt.seq = positive(vm, "seq", opt.seq);
  opt.vocab = positive(vm, "vocab", opt.vocab);
  if (vm.count("tokens") != 0) {
    int tokens = positive(vm, "tokens", 1);
    if (tokens % opt.seq != 0) {
      throw InputError(fmt::format("trace: --tokens: {} is not a multiple of --seq {}", tokens, opt.seq));
    }
    opt.batch = tokens / opt.seq;
  } else {
    if (vm.count("batch") == 0) throw InputError("trace: missing option --batch; see 'mfsim trace --help'");
    opt.batch = positive(vm, "batch", 1);
  }
  if (vm.count("image") != 0) {
    std::string s = vm["image"].as<std::string>();
    int h = 0, w = 0;
    char x = 0, extra = 0;
    if (std::sscanf(s.c_str(), "%d%c%d%c", &h, &x, &w, &extra) != 3 || x != 'x' || h < 1 || w < 1) {
      throw InputError(fmt::format("trace: --image: expected HxW with positive integers, got \"{}\"", s));
    }
    opt.image_h = h;
    opt.image_w = w;
  }
  std::vector<LayerGemm> layers;
  std::string what;
  if (net) {
    const std::string name = vm["network"].as<std::string>();
    NetworkOptions one = opt, two = opt;
    one.batch = 1;
    two.batch = 2;
    const std::int64_t limit = largest_batch(network_layers(name, one), network_layers(name, two));
    if (opt.batch > limit) {
      throw InputError(fmt::format("trace: --{}: {} is too large for {}: its GEMM dimensions would pass 2^31 - 1 "
                                   "(at most {} {})",
                                   vm.count("tokens") != 0 ? "tokens" : "batch",
                                   vm.count("tokens") != 0 ? static_cast<std::int64_t>(opt.batch) * opt.seq : opt.batch,
                                   name, vm.count("tokens") != 0 ? limit * opt.seq : limit,
                                   vm.count("tokens") != 0 ? "tokens" : "per step"));
    }
    layers = network_layers(name, opt);
    what = is_transformer_spec(name)
               ? fmt::format("{} training step: batch {} sequences", to_spec(parse_transformer_spec(name)), opt.batch)
           : name == "transformer-base"
               ? fmt::format("{} training step: {} sentences x {} tokens, vocabulary {}", name, opt.batch, opt.seq, opt.vocab)
               : fmt::format("{} training step: batch {}, {}x{} images", name, opt.batch, opt.image_h, opt.image_w);
  } else {
    const std::string path = vm["scalesim-topology"].as<std::string>();
    const bool gemm = vm.count("gemm") != 0;
    const std::int64_t limit =
        largest_batch(read_scalesim_topology(path, gemm, 1), read_scalesim_topology(path, gemm, 2));
    if (opt.batch > limit) {
      throw InputError(fmt::format("trace: --batch: {} is too large for {}: its GEMM dimensions would pass 2^31 - 1 "
                                   "(at most {} per step)",
                                   opt.batch, path, limit));
    }
    layers = read_scalesim_topology(path, vm.count("gemm") != 0, opt.batch);
    if (vm.count("training") == 0 && vm["phases"].defaulted()) phases = PhaseSelection{true, false, false};
    what = fmt::format("SCALE-Sim topology {} ({} form), batch {}", path, vm.count("gemm") != 0 ? "GEMM" : "conv",
                       opt.batch);
  }
  for (const LayerGemm& l : layers) {  // e.g. an image too small for the network's pooling
    if (l.m < 1 || l.n < 1 || l.k < 1) {
      throw InputError(fmt::format("trace: {}: layer {} would be a {} x {} x {} GEMM: the input is too small for the "
                                   "network",
                                   net ? "--network " + vm["network"].as<std::string>()
                                       : "--scalesim-topology " + vm["scalesim-topology"].as<std::string>(),
                                   l.name, l.m, l.n, l.k));
    }
  }
  std::string cmd = "mfsim trace";
  for (const auto& a : args) cmd += " " + a;
  const std::string out = vm["output"].as<std::string>();
  TraceWriter w(out, cmd, what);
  const std::vector<TraceRecord> records = training_records(layers, phases, format);
  if (records.empty()) {
    throw InputError(fmt::format("trace: --phases {}: the network has no GEMM in these phases; nothing to write",
                                 vm["phases"].as<std::string>()));
  }
  for (const auto& r : records) w.add_shape(r);
  if (vm.count("ops") != 0) {
    if (!net) throw InputError("trace: --ops: a SCALE-Sim topology has no model of the work outside its GEMMs");
    if (!vm["phases"].defaulted()) {
      throw InputError("trace: --ops: the step's operations need every phase; drop --phases");
    }
    NetworkOpsResult ops = network_ops(vm["network"].as<std::string>(), opt, layers);
    if (vm.count("optimizer") != 0) {
      const std::string o = vm["optimizer"].as<std::string>();
      if (o != "sgd" && o != "adam") throw InputError(fmt::format("trace: --optimizer: unknown optimizer \"{}\"; expected sgd or adam", o));
      ops.ops.back() = o == "sgd" ? sgd_momentum_op(ops.parameters) : adam_op(ops.parameters);  // the update is last
    }
    for (const NonGemmOp& op : ops.ops) w.add_op(op);
  } else if (vm.count("optimizer") != 0) {
    throw InputError("trace: --optimizer: only with --ops (the optimizer is part of the step's non-GEMM work)");
  }
  w.commit();
  if (vm.count("quiet") == 0) std::fprintf(stderr, "mfsim: wrote %s (%zu GEMM records)\n", out.c_str(), w.size());
  return kExitOk;
}

}  // namespace mfsim::cli
