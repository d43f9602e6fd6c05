#include "common/crc32.h"

#include <zlib.h>

#include <algorithm>

namespace mfsim {

std::uint32_t crc32(const void* data, std::size_t bytes, std::uint32_t running) {
  const auto* p = static_cast<const Bytef*>(data);
  uLong crc = running;
  while (bytes > 0) {  // zlib takes uInt lengths
    auto chunk = static_cast<uInt>(std::min<std::size_t>(bytes, 1u << 30));
    crc = ::crc32(crc, p, chunk);
    p += chunk;
    bytes -= chunk;
  }
  return static_cast<std::uint32_t>(crc);
}

}  // namespace mfsim
