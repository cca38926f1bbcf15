#include "exchange.h"

#include <cstring>

namespace kw {

namespace {
// Text kept by a pooled exchange: larger buffers (long URLs) are given back.
constexpr size_t kMaxRetainedText = 4096;
constexpr size_t kInitialText = 1024;
}  // namespace

void Exchange::Reset() {
  std::memset(&f, 0, sizeof f);
  f.kong_proxy_latency_ms = -1;
  f.kong_upstream_latency_ms = -1;
  f.kong_response_latency_ms = -1;
  f.grpc_status = -1;
  if (text.size() > kMaxRetainedText) std::vector<uint8_t>(kInitialText).swap(text);
  textLen = 0;
  methodText = path = query = host = userAgent = traceState = contentType = Str();
  requestId = kongRequestId = Str();
  ids = TraceIds();
  hasIds = false;
  activeSlot = -1;
  queued = false;
  lastAttemptOpen = false;
  lastAttemptError = 0;
  lastAttemptStatus = 0;
  attemptSpans.clear();
  live.clear();
  held.clear();
  pidPrev = pidNext = nullptr;
  pidList = nullptr;
  listed = false;
  parent = nullptr;
}

void Exchange::Grow(size_t n) { text.resize(2 * (textLen + n)); }

ExchangePool::~ExchangePool() {
  for (Exchange* ex : free_) delete ex;
}

Exchange* ExchangePool::Get() {
  Exchange* ex;
  if (free_.empty()) {
    ex = new Exchange();
    ex->text.resize(kInitialText);
  } else {
    ex = free_.back();
    free_.pop_back();
  }
  ex->Reset();
  return ex;
}

void ExchangePool::Put(Exchange* ex) {
  if (free_.size() >= kMaxFree) {
    delete ex;
    return;
  }
  free_.push_back(ex);
}

}  // namespace kw
