#include "models/dataset.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <zlib.h>

#include "common/error.h"

namespace mfsim {

namespace {
bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
}  // namespace

std::vector<std::uint8_t> read_idx(const std::string& path, int expected_dims, std::vector<int>* dims) {
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
  if (f == nullptr) throw InputError(fmt::format("{}: cannot open data file", path));
  std::vector<std::uint8_t> data;
  std::uint8_t buf[1 << 16];
  int n = 0;
  while ((n = gzread(f, buf, sizeof buf)) > 0) data.insert(data.end(), buf, buf + n);
  int err = 0;
  const char* msg = gzerror(f, &err);
  std::string why = err < 0 && msg != nullptr ? msg : "";
  gzclose(f);
  if (n < 0 || err < 0) throw InputError(fmt::format("{}: corrupt data file ({})", path, why.empty() ? "read error" : why));
  if (data.size() < 4) throw InputError(fmt::format("{}: not an IDX file (shorter than its header)", path));
  const int type = data[2], nd = data[3];
  if (data[0] != 0 || data[1] != 0 || type != 0x08) {
    throw InputError(fmt::format("{}: not an IDX file of unsigned bytes (magic {:02x}{:02x}{:02x}{:02x})", path, data[0],
                                 data[1], data[2], data[3]));
  }
  if (nd != expected_dims) {
    throw InputError(fmt::format("{}: expected an IDX file with {} dimensions, got {}", path, expected_dims, nd));
  }
  if (data.size() < 4u + 4u * nd) throw InputError(fmt::format("{}: truncated IDX header", path));
  std::size_t count = 1;
  dims->clear();
  for (int i = 0; i < nd; ++i) {
    const std::uint8_t* p = &data[4 + 4 * i];
    int d = (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    if (d <= 0) throw InputError(fmt::format("{}: dimension {} is {}", path, i, d));
    dims->push_back(d);
    count *= static_cast<std::size_t>(d);
  }
  const std::size_t header = 4 + 4 * static_cast<std::size_t>(nd);
  if (data.size() != header + count) {
    throw InputError(fmt::format("{}: expected {} data bytes after the header, got {} (truncated or corrupt file)",
                                 path, count, data.size() - header));
  }
  return std::vector<std::uint8_t>(data.begin() + static_cast<std::ptrdiff_t>(header), data.end());
}

Dataset load_idx_dataset(const std::string& dir, bool train, std::size_t limit) {
  const std::string prefix = train ? "train" : "t10k";
  auto find = [&](const std::string& base) {
    for (const std::string& p : {dir + "/" + base + ".gz", dir + "/" + base}) {
      if (exists(p)) return p;
    }
    throw InputError(fmt::format("{}/{}.gz: data file not found (install dataset-fashion-mnist or pass --data DIR)",
                                 dir, base));
  };
  const std::string img_path = find(prefix + "-images-idx3-ubyte");
  const std::string lbl_path = find(prefix + "-labels-idx1-ubyte");
  std::vector<int> idims, ldims;
  auto pixels = read_idx(img_path, 3, &idims);
  auto labels = read_idx(lbl_path, 1, &ldims);
  if (idims[0] != ldims[0]) {
    throw InputError(fmt::format("{}: {} labels for {} images in {}", lbl_path, ldims[0], idims[0], img_path));
  }
  Dataset d;
  d.rows = idims[1];
  d.cols = idims[2];
  std::size_t n = static_cast<std::size_t>(idims[0]);
  if (limit > 0 && limit < n) n = limit;
  const std::size_t px = static_cast<std::size_t>(d.rows) * d.cols;
  d.images.resize(n * px);
  d.labels.resize(n);
  // Fashion-MNIST training-set statistics of x / 255.
  const float mean = 0.2860f, inv_std = 1.0f / 0.3530f;
  for (std::size_t i = 0; i < n * px; ++i) d.images[i] = (static_cast<float>(pixels[i]) / 255.0f - mean) * inv_std;
  for (std::size_t i = 0; i < n; ++i) {
    if (labels[i] > 9) throw InputError(fmt::format("{}: label {} of example {} is not in 0..9", lbl_path, labels[i], i));
    d.labels[i] = labels[i];
  }
  return d;
}

}  // namespace mfsim
