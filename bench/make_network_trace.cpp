// Writes a shape-only training trace of ResNet-18 (ImageNet 224x224) for the timing-mode
// benchmark: make_network_trace BATCH OUT.json  (the same as `mfsim trace --network resnet18`)
#include <cstdio>
#include <cstdlib>

#include "traces/networks.h"
#include "traces/trace_writer.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: make_network_trace BATCH OUT.json\n");
    return 2;
  }
  mfsim::NetworkOptions opt;
  opt.batch = std::atoi(argv[1]);
  mfsim::TraceWriter w(argv[2], "bench/make_network_trace", "ResNet-18 ImageNet 224x224 training step");
  for (const auto& r : mfsim::training_records(mfsim::network_layers("resnet18", opt), {}, mfsim::NumFormat::kPot4)) {
    w.add_shape(r);
  }
  w.commit();
  return 0;
}
