// Random trace and span ids from one pool filled by getrandom(): one syscall per few hundred ids.
// An all-zero id is invalid in W3C and B3, so one is never handed out.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace kw {

class IdSource {
 public:
  explicit IdSource(size_t poolBytes = 4096);
  void TraceId(uint8_t out[16]);
  void SpanId(uint8_t out[8]);

 private:
  void Take(uint8_t* out, size_t n);
  void Refill();

  std::vector<uint8_t> pool_;
  size_t at_;
  uint64_t fallback_;  // used only if the kernel refuses random bytes
};

}  // namespace kw
