// One exchange while it is in flight: the numbers exactly as its frame will carry them, its
// strings in one reusable buffer, its trace ids, and (SERVER) its upstream attempts. Exchanges
// come from a pool so that steady traffic allocates nothing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "kw_exchange.h"
#include "trace_context.h"

namespace kw {

// A string of an exchange: bytes [off, off + len) of its text buffer.
struct Str {
  uint32_t off = 0;
  uint32_t len = 0;
  bool present = false;
};

struct Exchange {
  kw_exchange f;  // strings and frame_size are filled in when the frame is written

  std::vector<uint8_t> text;  // its size is capacity; textLen bytes are used
  size_t textLen = 0;
  Str methodText, path, query, host, userAgent, traceState, contentType;
  Str requestId, kongRequestId;  // matching upstream attempts only
  TraceIds ids;
  bool hasIds = false;
  int activeSlot = -1;  // AssemblerStats::activeServer index while counted there
  bool queued = false;  // SERVER, HTTP/2: read together with an earlier stream (nginx ran that one first)

  // SERVER: upstream attempts linked to it
  bool lastAttemptOpen = false;
  uint8_t lastAttemptError = 0;
  uint16_t lastAttemptStatus = 0;
  std::vector<uint64_t> attemptSpans;  // span ids taken, so a retry never reuses one
  std::vector<Exchange*> live;         // attempts still in flight
  std::vector<Exchange*> held;         // finished attempts written right after this frame
  Exchange* pidPrev = nullptr;         // the worker's in-flight SERVER list
  Exchange* pidNext = nullptr;
  void* pidList = nullptr;             // that list (AttemptMatcher::List), while listed
  bool listed = false;

  // CLIENT: the SERVER exchange it serves while that one is in flight
  Exchange* parent = nullptr;

  void Reset();
  // Keeps p[0, min(n, max)) among its strings.
  Str Put(const uint8_t* p, size_t n, size_t max) {
    if (n > max) n = max;
    if (textLen + n > text.size()) Grow(n);
    Str s;
    s.off = static_cast<uint32_t>(textLen);
    s.len = static_cast<uint32_t>(n);
    s.present = true;
    if (n > 0) std::memcpy(text.data() + textLen, p, n);
    textLen += n;
    return s;
  }
  void Grow(size_t n);
  const uint8_t* Bytes(const Str& s) const { return text.data() + s.off; }
};

class ExchangePool {
 public:
  ~ExchangePool();
  Exchange* Get();
  void Put(Exchange* ex);

 private:
  // Free exchanges kept for reuse; beyond this, they are freed (bounded memory after a burst).
  static constexpr size_t kMaxFree = 4096;
  std::vector<Exchange*> free_;
};

}  // namespace kw
