// IDX data files (gzip or plain), as `mfsim train --data DIR` reads them: the input is split at
// "#LABELS#" into the images file and the labels file of a data directory.
#include <cstdint>
#include <string>

#include "common/error.h"
#include "training/dataset.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const auto at = in.find("#LABELS#");
  const std::string images = in.substr(0, at), labels = at == std::string::npos ? "" : in.substr(at + 8);
  const std::string dir = mfsim::fuzz::scratch_dir();
  mfsim::fuzz::write_file(dir + "/t10k-images-idx3-ubyte", reinterpret_cast<const std::uint8_t*>(images.data()),
                          images.size());
  mfsim::fuzz::write_file(dir + "/t10k-labels-idx1-ubyte", reinterpret_cast<const std::uint8_t*>(labels.data()),
                          labels.size());
  try {
    mfsim::Dataset d = mfsim::load_idx_dataset(dir, false, 0);
    (void)d;
  } catch (const mfsim::InputError&) {
  }
  return 0;
}
