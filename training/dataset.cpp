#include "training/dataset.h"

#include <fmt/format.h>
#include <sys/stat.h>
#include <zlib.h>

#include <algorithm>

#include "common/atomic_file.h"
#include "common/error.h"

namespace mfsim {

namespace {
bool exists(const std::string& p) {
  struct stat st {};
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}
}  // namespace

std::vector<std::uint8_t> read_idx(const std::string& path, int expected_dims, std::vector<int>* dims) {
  require_not_directory(path);
  note_input(path);
  gzFile f = gzopen(path.c_str(), "rb");  // reads plain files too
  if (f == nullptr) throw InputError(fmt::format("{}: cannot open data file", path));
  // Reads at most `want` more bytes (the header first, then only as many as it declares, so a
  // small compressed file cannot make us hold more than its header promises).
  std::vector<std::uint8_t> data;
  auto read_up_to = [&](std::size_t want) {
    std::uint8_t buf[1 << 16];
    while (want > 0) {
      const int n = gzread(f, buf, static_cast<unsigned>(std::min<std::size_t>(sizeof buf, want)));
      if (n <= 0) return n;
      data.insert(data.end(), buf, buf + n);
      want -= static_cast<std::size_t>(n);
    }
    return 1;
  };
  auto fail_if_corrupt = [&](int n) {
    int err = 0;
    const char* msg = gzerror(f, &err);
    if (n < 0 || err < 0) {
      std::string why = err < 0 && msg != nullptr ? msg : "read error";
      if (why.rfind(path + ": ", 0) == 0) why = why.substr(path.size() + 2);  // zlib prefixes the path
      gzclose(f);
      throw InputError(fmt::format("{}: corrupt data file ({})", path, why));
    }
  };
  auto fail = [&](const std::string& message) {
    gzclose(f);
    throw InputError(message);
  };
  fail_if_corrupt(read_up_to(4));
  if (data.size() < 4) fail(fmt::format("{}: not an IDX file (shorter than its header)", path));
  const int type = data[2], nd = data[3];
  if (data[0] != 0 || data[1] != 0 || type != 0x08) {
    fail(fmt::format("{}: not an IDX file of unsigned bytes (magic {:02x}{:02x}{:02x}{:02x})", path, data[0], data[1],
                     data[2], data[3]));
  }
  if (nd != expected_dims) {
    fail(fmt::format("{}: expected an IDX file with {} dimensions, got {}", path, expected_dims, nd));
  }
  fail_if_corrupt(read_up_to(4u * static_cast<unsigned>(nd)));
  if (data.size() < 4u + 4u * static_cast<unsigned>(nd)) fail(fmt::format("{}: truncated IDX header", path));
  // At most 2^31 bytes of data: Fashion-MNIST's 60,000 images are 47 MB.
  constexpr std::uint64_t kMaxBytes = std::uint64_t{1} << 31;
  std::uint64_t count = 1;
  dims->clear();
  for (int i = 0; i < nd; ++i) {
    const std::uint8_t* p = &data[4 + 4 * static_cast<std::size_t>(i)];
    const std::int64_t d = (static_cast<std::int64_t>(p[0]) << 24) | (p[1] << 16) | (p[2] << 8) | p[3];
    if (d <= 0 || d > 2147483647) fail(fmt::format("{}: dimension {} is {}", path, i, static_cast<std::int32_t>(d)));
    dims->push_back(static_cast<int>(d));
    if (__builtin_mul_overflow(count, static_cast<std::uint64_t>(d), &count) || count > kMaxBytes) {
      fail(fmt::format("{}: the header declares more than {} data bytes", path, kMaxBytes));
    }
  }
  const std::size_t header = data.size();
  const int n = read_up_to(static_cast<std::size_t>(count) + 1);  // one more: is there trailing data?
  fail_if_corrupt(n);
  gzclose(f);
  if (data.size() != header + count) {
    throw InputError(fmt::format("{}: expected {} data bytes after the header, {} (truncated or corrupt file)", path,
                                 count, data.size() < header + count
                                            ? fmt::format("got {}", data.size() - header)
                                            : std::string("found more")));
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
