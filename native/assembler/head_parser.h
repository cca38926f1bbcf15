// One HTTP/1.x head (start line + header lines) -> the fields exchanges carry and the body's
// framing. Heads are untrusted input from every client on the internet: request lines are read
// as leniently as nginx reads them (every request nginx answers must be reported), only selected
// headers are kept, each bounded, and nothing here allocates.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kw {

// Bytes of a kept header value; longer values are cut (and marked).
constexpr size_t kMaxHeaderValue = 512;

// A byte range of the parsed head (or a constant); only valid while the head's bytes are.
struct View {
  const uint8_t* p = nullptr;
  uint32_t n = 0;
  bool present = false;
};

enum class BodyKind : uint8_t {
  None,
  Length,
  Chunked,
  Close,        // until the connection closes
  Unframeable,  // nginx refuses the request (400/501/505) and closes: its body cannot be followed
};

// Selected headers of one head, values trimmed, duplicates joined with ", ", each <= 512 bytes.
enum HeaderId : uint8_t {
  // requests
  kHdrHost,
  kHdrUserAgent,
  kHdrTraceparent,
  kHdrTracestate,
  kHdrB3,
  kHdrB3TraceId,
  kHdrB3SpanId,
  kHdrB3Sampled,
  kHdrB3Flags,
  kHdrRequestId,
  kHdrKongRequestId,
  kHdrContentType,
  // both
  kHdrConnection,
  kHdrTransferEncoding,
  // responses
  kHdrUpgrade,
  kHdrServer,
  kHdrVia,
  kHdrProxyLatency,
  kHdrUpstreamLatency,
  kHdrResponseLatency,
  kHdrGrpcStatus,
  kHdrCount,
};

// Values are views into the head's bytes; only a value joined from several lines (or folded)
// is copied, into its slot's bytes. Clearing is one store: only `present` bits are trusted.
struct HeaderValues {
  struct Slot {
    const uint8_t* p;
    uint16_t len;
    bool cut;    // the value was longer than kept
    bool owned;  // p points into joined[id]
  };
  uint32_t present;  // bit HeaderId
  Slot slot[kHdrCount];
  uint8_t joined[kHdrCount][kMaxHeaderValue];
  // Content-Length is not kept as text: how many lines, and whether they agree and are numbers.
  uint32_t lengthLines;
  bool lengthValid;
  bool lengthsAgree;
  uint64_t length;

  void Clear() {
    present = 0;
    lengthLines = 0;
    lengthValid = false;
    lengthsAgree = true;
    length = 0;
  }
  bool Has(HeaderId id) const { return (present >> id & 1) != 0; }
  // Copies p[0, n) into the slot's own bytes (joined to a value already there with ", "): for
  // values whose bytes do not outlive the call (HTTP/2's decoded header fields).
  void AddCopy(HeaderId id, const uint8_t* p, size_t n);
  bool Cut(HeaderId id) const { return Has(id) && slot[id].cut; }
  View Get(HeaderId id) const {
    if (!Has(id)) return View();
    return View{slot[id].p, slot[id].len, true};
  }
};

struct RequestHead {
  uint8_t method;      // enum kw_method
  View methodText;     // the method as sent, when it is KW_METHOD_OTHER (<= KW_MAX_METHOD_TEXT)
  bool garbage;        // not a request line at all: method OTHER, no path
  View path;           // absent when the line has no target
  View query;          // after '?', absent without '?'
  bool targetCut;      // path + query were longer than KW_MAX_TARGET
  uint8_t version;     // major*10+minor; 9 = HTTP/0.9 (no version); 0 = not understood
  BodyKind body;
  uint64_t length;     // BodyKind::Length
  HeaderValues headers;
};

struct ResponseHead {
  bool valid;          // an HTTP/1.x status line and consistent framing: the rest is meaningful
  uint16_t status;
  uint8_t version;
  BodyKind body;
  uint64_t length;
  bool closes;         // Connection: close, or HTTP/1.0 without keep-alive
  bool serverKong;     // Server: kong/...
  bool via;
  bool workerEvents;   // Upgrade: Kong-Worker-Events/...
  int32_t proxyLatencyMs;
  int32_t upstreamLatencyMs;
  int32_t responseLatencyMs;
  int16_t grpcStatus;
  HeaderValues headers;
};

// b[0, n): bytes from a head's first byte. Returns the index just after the head (its blank
// line; for HTTP/0.9 its request line), or 0 when b holds no complete head: then `out` says what
// the complete lines said (a head cut by what was kept), and a request line cut itself has its
// target run to the end of b (a request nginx answered before its head ended).
size_t ParseRequestHead(const uint8_t* b, size_t n, RequestHead* out);
// As ParseRequestHead; out->valid is false when the status line is not HTTP/1.x or the framing
// contradicts itself.
size_t ParseResponseHead(const uint8_t* b, size_t n, ResponseHead* out);

// A header name (any case) among the kept ones of a request or a response head: true with its id,
// or with *isLength for Content-Length (counted, not kept).
bool FindHeaderName(const uint8_t* name, size_t n, bool request, HeaderId* id, bool* isLength);
// enum kw_method of a method as sent (KW_METHOD_OTHER for any but the nine).
uint8_t MethodOf(const uint8_t* p, size_t n);
// A request-target -> out->path and out->query (origin form kept, absolute form keeps its path, a
// fragment dropped), bounded by KW_MAX_TARGET (out->targetCut).
void SplitRequestTarget(View target, RequestHead* out);
// What a response's kept headers say: Server: kong/, Via, Kong's latency headers, grpc-status.
void ReadResponseHeaders(const HeaderValues& h, ResponseHead* out);

// Request bytes at a message boundary that are not text at all (TLS, binary): true as soon as a
// byte of the method is not printable ASCII. n may end anywhere.
bool IsGarbageRequestStart(const uint8_t* b, size_t n);
// The request line of b[0, lineEnd) has no " HTTP/x.y" at its end: an HTTP/0.9 request, whose
// head is that one line.
bool IsHttp09Line(const uint8_t* b, size_t lineEnd);
// Strict: what a transfer that starts a message looks like (resynchronising, direction guesses,
// Kong's own outbound requests). n may end anywhere; the checks stop where the bytes do.
bool StartsRequestLine(const uint8_t* b, size_t n);
bool StartsStatusLine(const uint8_t* b, size_t n);
// Index just after the blank line ending a head in b[from, to), or 0. Bare LF is accepted.
size_t FindHeadEnd(const uint8_t* b, size_t from, size_t to);
// Trims as JavaScript's String.prototype.trim does on Latin-1 text.
inline bool IsJsSpace(uint8_t c) { return c == 0x20 || (c >= 0x09 && c <= 0x0d) || c == 0xa0; }
inline View Trim(const uint8_t* p, size_t n) {
  size_t a = 0;
  while (a < n && IsJsSpace(p[a])) a++;
  while (n > a && IsJsSpace(p[n - 1])) n--;
  return View{p + a, static_cast<uint32_t>(n - a), true};
}
bool EqualsIgnoreCase(View v, const char* lower, size_t n);
template <size_t N>
bool EqualsIgnoreCase(View v, const char (&lower)[N]) {
  return EqualsIgnoreCase(v, lower, N - 1);
}
template <size_t N>
bool StartsWithIgnoreCase(View v, const char (&lower)[N]) {
  return v.n >= N - 1 && EqualsIgnoreCase(View{v.p, static_cast<uint32_t>(N - 1), true}, lower, N - 1);
}

}  // namespace kw
