// CRC-32 (IEEE 802.3, the zlib/gzip/PNG polynomial) of a byte range, via zlib. Payload
// checksums of traces use it, so `python3 -c 'import zlib; print(hex(zlib.crc32(data)))'`
// reproduces them.
#pragma once

#include <cstddef>
#include <cstdint>

namespace mfsim {

std::uint32_t crc32(const void* data, std::size_t bytes, std::uint32_t running = 0);

}  // namespace mfsim
