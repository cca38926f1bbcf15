#include "exchange_fill.h"

namespace kw {

namespace {

constexpr uint64_t kMaxHeadSize = 0xffffffffu;

uint32_t HeadSize(uint64_t n) { return static_cast<uint32_t>(n < kMaxHeadSize ? n : kMaxHeadSize); }

void Keep(Exchange* ex, Str* to, View v, size_t max) {
  if (v.present) *to = ex->Put(v.p, v.n, max);
}

}  // namespace

void TakeRequestHead(Exchange* ex, const RequestHead& head, uint64_t headSize, bool truncated) {
  kw_exchange& f = ex->f;
  f.method = head.method;
  f.http_version = head.version;
  f.request_head_size = HeadSize(headSize);
  if (truncated || head.targetCut) f.flags |= KW_EX_TRUNCATED;
  Keep(ex, &ex->methodText, head.methodText, KW_MAX_METHOD_TEXT);
  Keep(ex, &ex->path, head.path, KW_MAX_TARGET);
  Keep(ex, &ex->query, head.query, KW_MAX_TARGET);
  Keep(ex, &ex->host, head.headers.Get(kHdrHost), KW_MAX_HOST);
  Keep(ex, &ex->userAgent, head.headers.Get(kHdrUserAgent), KW_MAX_USER_AGENT);
}

void TakeRequestTail(Exchange* ex, const RequestHead& head) {
  Keep(ex, &ex->contentType, head.headers.Get(kHdrContentType), KW_MAX_CONTENT_TYPE);
  if (ex->f.type != KW_FRAME_SERVER) return;
  Keep(ex, &ex->requestId, head.headers.Get(kHdrRequestId), kMaxHeaderValue);
  Keep(ex, &ex->kongRequestId, head.headers.Get(kHdrKongRequestId), kMaxHeaderValue);
}

void TakeResponseHead(Exchange* ex, const ResponseHead& head, uint64_t headSize, uint64_t firstNs) {
  kw_exchange& f = ex->f;
  f.status = head.status;
  f.flags |= KW_EX_RESPONSE;
  if (head.serverKong) f.flags |= KW_EX_SERVER_KONG;
  if (head.via) f.flags |= KW_EX_VIA;
  f.response_start_ns = firstNs;
  f.response_head_size = HeadSize(headSize);
  f.kong_proxy_latency_ms = head.proxyLatencyMs;
  f.kong_upstream_latency_ms = head.upstreamLatencyMs;
  f.kong_response_latency_ms = head.responseLatencyMs;
  f.grpc_status = head.grpcStatus;
}

}  // namespace kw
