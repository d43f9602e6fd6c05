// Fashion-MNIST (or any MNIST-format data set) from gzipped or plain IDX files:
// train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz], t10k-... in one directory
// (Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist). Images become floats
// standardised with the Fashion-MNIST training mean and standard deviation.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mfsim {

struct Dataset {
  int rows = 28, cols = 28;
  std::vector<float> images;  // n x rows x cols
  std::vector<int> labels;
  std::size_t size() const { return labels.size(); }
};

constexpr const char* kDefaultDataDir = "/usr/share/datasets/fashion-mnist";

// `limit` > 0 keeps the first `limit` examples. Throws InputError naming the file.
Dataset load_idx_dataset(const std::string& dir, bool train, std::size_t limit = 0);

// Reads one IDX file (gzip or plain) into bytes; validates magic and dimensions.
std::vector<std::uint8_t> read_idx(const std::string& path, int expected_dims, std::vector<int>* dims);

}  // namespace mfsim
