// One read or write as the kernel reported it: how many bytes moved, the first ones copied, and
// the last ones when they are known. The middle of a large transfer is never seen.
#pragma once

#include <cstdint>

namespace kw {

struct Transfer {
  const uint8_t* data = nullptr;  // the first `captured` bytes moved
  uint64_t captured = 0;          // <= result
  const uint8_t* tail = nullptr;  // the last `tailLen` bytes moved; tailLen 0: the end is unknown
  uint64_t tailLen = 0;
  uint64_t result = 0;  // bytes moved, > 0
  uint64_t timeNs = 0;

  // The byte at offset q, or -1 when the kernel did not copy it.
  int At(uint64_t q) const {
    if (q < captured) return data[q];
    if (q < result && q + tailLen >= result) return tail[q - (result - tailLen)];
    return -1;
  }
  bool EndKnown() const { return tailLen > 0; }
};

}  // namespace kw
