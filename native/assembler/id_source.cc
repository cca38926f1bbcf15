#include "id_source.h"

#include <sys/random.h>
#include <time.h>

#include <cstring>

namespace kw {

IdSource::IdSource(size_t poolBytes) : pool_(poolBytes < 64 ? 64 : poolBytes), at_(pool_.size()) {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  fallback_ = static_cast<uint64_t>(ts.tv_nsec) ^ (static_cast<uint64_t>(ts.tv_sec) << 32) ^
              reinterpret_cast<uintptr_t>(this);
}

void IdSource::Refill() {
  size_t got = 0;
  while (got < pool_.size()) {
    ssize_t n = getrandom(pool_.data() + got, pool_.size() - got, 0);
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  // Without the kernel's randomness (never seen in practice), ids must still be unique: splitmix64.
  for (; got < pool_.size(); got++) {
    fallback_ += 0x9e3779b97f4a7c15ull;
    uint64_t z = fallback_;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    pool_[got] = static_cast<uint8_t>(z ^ (z >> 31));
  }
  at_ = 0;
}

void IdSource::Take(uint8_t* out, size_t n) {
  for (;;) {
    if (at_ + n > pool_.size()) Refill();
    std::memcpy(out, pool_.data() + at_, n);
    at_ += n;
    for (size_t i = 0; i < n; i++) {
      if (out[i] != 0) return;
    }
  }
}

void IdSource::TraceId(uint8_t out[16]) { Take(out, 16); }
void IdSource::SpanId(uint8_t out[8]) { Take(out, 8); }

}  // namespace kw
