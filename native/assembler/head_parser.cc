#include "head_parser.h"

#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kw_exchange.h"

namespace kw {

namespace {

// Header names worth keeping, found by length and then compared folding case.
struct Name {
  const char* text;
  uint8_t id;  // HeaderId, or kLengthId
  bool request;
  bool response;
};

constexpr uint8_t kLengthId = 0xff;

const Name kNames[] = {
    {"host", kHdrHost, true, false},
    {"user-agent", kHdrUserAgent, true, false},
    {"traceparent", kHdrTraceparent, true, false},
    {"tracestate", kHdrTracestate, true, false},
    {"b3", kHdrB3, true, false},
    {"x-b3-traceid", kHdrB3TraceId, true, false},
    {"x-b3-spanid", kHdrB3SpanId, true, false},
    {"x-b3-sampled", kHdrB3Sampled, true, false},
    {"x-b3-flags", kHdrB3Flags, true, false},
    {"x-request-id", kHdrRequestId, true, false},
    {"x-kong-request-id", kHdrKongRequestId, true, false},
    {"content-type", kHdrContentType, true, false},
    {"connection", kHdrConnection, true, true},
    {"transfer-encoding", kHdrTransferEncoding, true, true},
    {"content-length", kLengthId, true, true},
    {"upgrade", kHdrUpgrade, false, true},
    {"server", kHdrServer, false, true},
    {"via", kHdrVia, false, true},
    {"x-kong-proxy-latency", kHdrProxyLatency, false, true},
    {"x-kong-upstream-latency", kHdrUpstreamLatency, false, true},
    {"x-kong-response-latency", kHdrResponseLatency, false, true},
    {"grpc-status", kHdrGrpcStatus, false, true},
};
constexpr size_t kNameCount = sizeof(kNames) / sizeof(kNames[0]);
constexpr size_t kMaxNameLen = 32;

// Little-endian word of up to 8 bytes, zero padded.
uint64_t Word(const uint8_t* p, size_t n) {
  uint64_t w = 0;
  std::memcpy(&w, p, n < 8 ? n : 8);
  return w;
}

// As Word, reading a whole word when `avail` bytes may be read: one load, no store to reload.
uint64_t WordAt(const uint8_t* p, size_t n, size_t avail) {
  if (avail < 8) return Word(p, n);
  uint64_t w;
  std::memcpy(&w, p, 8);
  return n >= 8 ? w : w & ((1ull << (8 * n)) - 1);
}

struct Tables {
  uint64_t lengths = 0;  // bit n: some wanted name has n characters
  // Per name length, a position where the names of that length all differ, and the name by
  // its (lower-case) character there: one probe finds the only name a header could be.
  uint8_t position[kMaxNameLen + 1];
  int8_t byChar[kMaxNameLen + 1][128];
  // Each name as words (lower case), for comparing 8 characters at a time.
  uint64_t words[kNameCount][kMaxNameLen / 8];

  Tables() {
    std::memset(position, 0, sizeof position);
    std::memset(byChar, -1, sizeof byChar);
    std::memset(words, 0, sizeof words);
    for (size_t len = 1; len <= kMaxNameLen; len++) {
      for (size_t at = 0; at < len; at++) {
        bool distinct = true;
        for (size_t i = 0; i < kNameCount && distinct; i++) {
          for (size_t j = i + 1; j < kNameCount && distinct; j++) {
            distinct = std::strlen(kNames[i].text) != len || std::strlen(kNames[j].text) != len ||
                       kNames[i].text[at] != kNames[j].text[at];
          }
        }
        if (distinct) {
          position[len] = static_cast<uint8_t>(at);
          break;
        }
      }
    }
    for (size_t i = 0; i < kNameCount; i++) {
      const size_t len = std::strlen(kNames[i].text);
      byChar[len][static_cast<uint8_t>(kNames[i].text[position[len]])] = static_cast<int8_t>(i);
      lengths |= 1ull << len;
      for (size_t off = 0; off < len; off += 8) {
        words[i][off / 8] = Word(reinterpret_cast<const uint8_t*>(kNames[i].text) + off, len - off);
      }
    }
  }
};

bool IsDigit(uint8_t c) { return c >= '0' && c <= '9'; }

const Tables kTables;

// The wanted name s[0, n) is (in any case), or nullptr. The wanted names hold only a-z, 0-9 and
// '-': OR 0x20 folds letters and leaves those alone, and only control characters could fold into
// one of them, so a match is checked for those. A name with anything but token characters thus
// never matches, which is what skipping an invalid line needs.
const Name* Lookup(const uint8_t* s, size_t n, size_t avail, bool request) {
  constexpr uint64_t kFold = 0x2020202020202020ull;
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  uint8_t c = s[kTables.position[n]];
  if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c | 0x20);
  const int k = c < 128 ? kTables.byChar[n][c] : -1;
  if (k < 0) return nullptr;
  const Name& name = kNames[k];
  if (request ? !name.request : !name.response) return nullptr;
  const uint64_t* want = kTables.words[k];
  uint64_t control = 0;
  for (size_t off = 0; off < n; off += 8) {
    const size_t m = n - off < 8 ? n - off : 8;
    const uint64_t raw = WordAt(s + off, m, avail - off);
    const uint64_t pad = m == 8 ? 0 : ~0ull << (8 * m);  // bytes past the name
    if (((raw | kFold) & ~pad) != want[off / 8]) return nullptr;
    // any byte below 0x20 (the padding made 0x20): the classic "has less than" word test
    const uint64_t x = raw | (pad & kFold);
    control |= (x - 0x20 * kOnes) & ~x & kHigh;
  }
  return control == 0 ? &name : nullptr;
}

// Joins more bytes to a value: the value moves into its own bytes first.
void Append(HeaderValues* h, HeaderId id, const uint8_t* p, size_t n) {
  HeaderValues::Slot& s = h->slot[id];
  uint8_t* own = h->joined[id];
  if (!s.owned) {
    std::memmove(own, s.p, s.len);
    s.p = own;
    s.owned = true;
  }
  size_t room = kMaxHeaderValue - s.len;
  if (n > room) {
    s.cut = true;
    n = room;
  }
  std::memcpy(own + s.len, p, n);
  s.len = static_cast<uint16_t>(s.len + n);
}

void SetOrJoin(HeaderValues* h, HeaderId id, View v) {
  if (!h->Has(id)) {
    HeaderValues::Slot& s = h->slot[id];
    h->present |= 1u << id;
    s.owned = false;
    s.p = v.p;
    s.cut = v.n > kMaxHeaderValue;
    s.len = static_cast<uint16_t>(s.cut ? kMaxHeaderValue : v.n);
    return;
  }
  Append(h, id, reinterpret_cast<const uint8_t*>(", "), 2);
  Append(h, id, v.p, v.n);
}

// 1 to 15 digits (a safe integer), as nginx and the TypeScript agent accepted.
bool ParseLength(View v, uint64_t* out) {
  if (v.n == 0 || v.n > 15) return false;
  uint64_t x = 0;
  for (uint32_t i = 0; i < v.n; i++) {
    if (!IsDigit(v.p[i])) return false;
    x = x * 10 + (v.p[i] - '0');
  }
  *out = x;
  return true;
}

// Whole milliseconds as Kong writes them; -1 when absent or not a non-negative integer.
int32_t ParseLatency(View v) {
  if (!v.present || v.n == 0 || v.n > 9) return -1;
  int32_t x = 0;
  for (uint32_t i = 0; i < v.n; i++) {
    if (!IsDigit(v.p[i])) return -1;
    x = x * 10 + (v.p[i] - '0');
  }
  return x;
}

int16_t ParseGrpcStatus(View v) {
  if (!v.present || v.n == 0 || v.n > 4) return -1;
  int16_t x = 0;
  for (uint32_t i = 0; i < v.n; i++) {
    if (!IsDigit(v.p[i])) return -1;
    x = static_cast<int16_t>(x * 10 + (v.p[i] - '0'));
  }
  return x;
}

// Does the comma-separated token list hold `token` (case-insensitive)?
template <size_t N>
bool HasToken(View v, const char (&token)[N]) {
  if (EqualsIgnoreCase(v, token)) return true;  // nearly always the whole value
  size_t i = 0;
  while (i < v.n) {
    size_t j = i;
    while (j < v.n && v.p[j] != ',') j++;
    View t = Trim(v.p + i, j - i);
    if (EqualsIgnoreCase(t, token)) return true;
    i = j + 1;
  }
  return false;
}

// One header line from b[ls, n): the first ':' (or n when the line has none before its LF) and
// its LF (or n when b ends first). Both in one pass of 16-byte blocks where SSE2 is there.
void ScanLine(const uint8_t* b, size_t ls, size_t n, size_t* colon, size_t* lf) {
  *colon = n;
  size_t i = ls;
#if defined(__SSE2__)
  const __m128i kColon = _mm_set1_epi8(':');
  const __m128i kLf = _mm_set1_epi8('\n');
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + i));
    const unsigned lfs = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, kLf)));
    if (*colon == n) {
      const unsigned colons = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(v, kColon)));
      // a colon counts only before the line's end
      const unsigned before = lfs != 0 ? (1u << __builtin_ctz(lfs)) - 1 : 0xffffu;
      if ((colons & before) != 0) *colon = i + static_cast<size_t>(__builtin_ctz(colons & before));
    }
    if (lfs != 0) {
      *lf = i + static_cast<size_t>(__builtin_ctz(lfs));
      return;
    }
  }
#endif
  for (; i < n; i++) {
    if (b[i] == '\n') {
      *lf = i;
      return;
    }
    if (b[i] == ':' && *colon == n) *colon = i;
  }
  *lf = n;
}

// Header lines after the start line: b[from, n). Lines end at LF (a CR before it is dropped),
// as nginx reads them; a last line without LF is incomplete and ignored. Returns the index just
// after the blank line that ends the head, or 0 when b has none (a head cut short).
size_t ScanHeaders(const uint8_t* b, size_t from, size_t n, bool request, HeaderValues* h) {
  int last = -1;  // the kept header a folded line continues
  size_t ls = from;
  while (ls < n) {
    // The name runs to ':'. A line without one, or whose name is not made of token characters,
    // is invalid and skipped (nginx's ignore_invalid_headers); only wanted lengths are looked at.
    size_t i = 0;
    size_t le = 0;
    ScanLine(b, ls, n, &i, &le);
    if (le == n) return 0;
    const size_t stop = le > ls && b[le - 1] == '\r' ? le - 1 : le;
    const size_t next = le + 1;
    if (stop == ls) return next;  // the blank line
    const uint8_t c0 = b[ls];
    if (c0 == ' ' || c0 == '\t') {
      // obsolete line folding continues the previous kept value
      if (last >= 0) {
        View v = Trim(b + ls, stop - ls);
        Append(h, static_cast<HeaderId>(last), reinterpret_cast<const uint8_t*>(" "), 1);
        Append(h, static_cast<HeaderId>(last), v.p, v.n);
      }
      ls = next;
      continue;
    }
    last = -1;
    const size_t nameLen = i < stop ? i - ls : 0;
    const Name* name = nullptr;
    if (nameLen > 0 && nameLen <= kMaxNameLen && (kTables.lengths >> nameLen & 1)) {
      name = Lookup(b + ls, nameLen, n - ls, request);
    }
    if (name != nullptr) {
      const size_t vs = i + 1;
      View v = Trim(b + vs, stop - vs);
      if (name->id == kLengthId) {
        uint64_t x = 0;
        const bool ok = ParseLength(v, &x);
        if (h->lengthLines == 0) {
          h->lengthValid = ok;
          h->length = x;
        } else if (!ok || !h->lengthValid || x != h->length) {
          h->lengthsAgree = false;
        }
        h->lengthLines++;
      } else {
        SetOrJoin(h, static_cast<HeaderId>(name->id), v);
        last = name->id;
      }
    }
    ls = next;
  }
  return 0;
}

const uint8_t kSlash[] = {'/'};

}  // namespace

uint8_t MethodOf(const uint8_t* p, size_t n) {
  auto is = [&](const char* m) { return std::memcmp(p, m, n) == 0; };
  switch (n) {
    case 3:
      return is("GET") ? KW_METHOD_GET : is("PUT") ? KW_METHOD_PUT : KW_METHOD_OTHER;
    case 4:
      return is("POST") ? KW_METHOD_POST : is("HEAD") ? KW_METHOD_HEAD : KW_METHOD_OTHER;
    case 5:
      return is("PATCH") ? KW_METHOD_PATCH : is("TRACE") ? KW_METHOD_TRACE : KW_METHOD_OTHER;
    case 6:
      return is("DELETE") ? KW_METHOD_DELETE : KW_METHOD_OTHER;
    case 7:
      return is("OPTIONS") ? KW_METHOD_OPTIONS : is("CONNECT") ? KW_METHOD_CONNECT : KW_METHOD_OTHER;
    default:
      return KW_METHOD_OTHER;
  }
}

namespace {

// " HTTP/d+.d+" at the end of line[0, n) (trailing spaces already dropped): where the space
// before it is, and the version; false when there is none.
bool VersionSuffix(const uint8_t* line, size_t n, size_t* sp, uint8_t* version) {
  size_t i = n;
  size_t minorDigits = 0;
  while (i > 0 && IsDigit(line[i - 1])) {
    i--;
    minorDigits++;
  }
  if (minorDigits == 0 || i == 0 || line[i - 1] != '.') return false;
  size_t minorAt = i;
  i--;
  size_t majorDigits = 0;
  while (i > 0 && IsDigit(line[i - 1])) {
    i--;
    majorDigits++;
  }
  if (majorDigits == 0 || i < 6 || std::memcmp(line + i - 5, "HTTP/", 5) != 0 || line[i - 6] != ' ') return false;
  *sp = i - 6;
  *version = 0;
  if (majorDigits == 1 && minorDigits == 1) {
    *version = static_cast<uint8_t>((line[i] - '0') * 10 + (line[minorAt] - '0'));
  }
  return true;
}

// "HTTP/1.1" cut anywhere: "H", "HTTP/", "HTTP/1.".
bool IsVersionPrefix(const uint8_t* p, size_t n) {
  static const char kHttp[] = "HTTP/";
  for (size_t i = 0; i < n; i++) {
    if (i < 5 ? p[i] != static_cast<uint8_t>(kHttp[i]) : !(IsDigit(p[i]) || p[i] == '.')) return false;
  }
  return n > 0;
}

// Origin form keeps itself; absolute form keeps only its path; a fragment is dropped.
void SplitTarget(View target, RequestHead* out) {
  const uint8_t* p = target.p;
  size_t n = target.n;
  out->query = View();
  if (n == 0 || p[0] != '/') {
    // indexOf("://") > 0
    size_t scheme = 0;
    bool found = false;
    for (size_t i = 1; i + 2 < n; i++) {
      if (p[i] == ':' && p[i + 1] == '/' && p[i + 2] == '/') {
        scheme = i;
        found = true;
        break;
      }
    }
    if (found) {
      size_t from = scheme + 3;
      const uint8_t* slash = static_cast<const uint8_t*>(std::memchr(p + from, '/', n - from));
      const uint8_t* q = static_cast<const uint8_t*>(std::memchr(p + from, '?', n - from));
      if (slash == nullptr || (q != nullptr && q < slash)) {
        out->path = View{kSlash, 1, true};
        if (q != nullptr) {
          const uint8_t* qs = q + 1;
          const uint8_t* end = p + n;
          const uint8_t* hash = static_cast<const uint8_t*>(std::memchr(qs, '#', end - qs));
          if (hash != nullptr) end = hash;
          out->query = View{qs, static_cast<uint32_t>(end - qs), true};
        }
        return;
      }
      n -= static_cast<size_t>(slash - p);
      p = slash;
    }
  }
  const uint8_t* hash = static_cast<const uint8_t*>(std::memchr(p, '#', n));
  if (hash != nullptr) n = static_cast<size_t>(hash - p);
  const uint8_t* q = static_cast<const uint8_t*>(std::memchr(p, '?', n));
  if (q == nullptr) {
    out->path = View{p, static_cast<uint32_t>(n), true};
    return;
  }
  out->path = View{p, static_cast<uint32_t>(q - p), true};
  out->query = View{q + 1, static_cast<uint32_t>(n - (q - p) - 1), true};
}

void BoundTarget(RequestHead* out) {
  out->targetCut = false;
  if (out->path.n > KW_MAX_TARGET) {
    out->path.n = KW_MAX_TARGET;
    out->targetCut = true;
  }
  if (out->query.present && out->path.n + out->query.n > KW_MAX_TARGET) {
    out->query.n = KW_MAX_TARGET - out->path.n;
    out->targetCut = true;
  }
}

// The request line b[0, n) without its line end.
void ParseRequestLine(const uint8_t* b, size_t n, bool complete, RequestHead* out) {
  out->garbage = IsGarbageRequestStart(b, n);
  out->method = KW_METHOD_OTHER;
  out->methodText = View();
  out->path = View();
  out->query = View();
  out->targetCut = false;
  out->version = 0;
  if (out->garbage) return;
  const uint8_t* sp = static_cast<const uint8_t*>(std::memchr(b, ' ', n));
  size_t methodLen = sp != nullptr ? static_cast<size_t>(sp - b) : n;
  out->method = MethodOf(b, methodLen);
  if (out->method == KW_METHOD_OTHER && methodLen > 0) {
    const size_t kept = methodLen < KW_MAX_METHOD_TEXT ? methodLen : KW_MAX_METHOD_TEXT;
    out->methodText = View{b, static_cast<uint32_t>(kept), true};
  }
  if (complete) out->version = 9;
  if (sp == nullptr) return;
  size_t end = n;
  while (end > methodLen && b[end - 1] == ' ') end--;
  if (complete) {
    // The target runs to the last space before the version: spaces inside it are kept.
    size_t vsp = 0;
    uint8_t version = 0;
    if (VersionSuffix(b, end, &vsp, &version)) {
      out->version = version;
      end = vsp;
    }
  }
  size_t from = methodLen + 1;
  while (from < end && b[from] == ' ') from++;
  if (from >= end) return;
  if (!complete) {
    // A line cut in its version (" HT", " HTTP/1."): the target ends before it.
    size_t last = end;
    while (last > from && b[last - 1] != ' ') last--;
    if (last > from && IsVersionPrefix(b + last, end - last)) end = last - 1;
  }
  while (end > from && b[end - 1] == ' ') end--;
  if (end <= from) return;
  SplitRequestTarget(View{b + from, static_cast<uint32_t>(end - from), true}, out);
}

}  // namespace

void SplitRequestTarget(View target, RequestHead* out) {
  SplitTarget(target, out);
  BoundTarget(out);
}

void HeaderValues::AddCopy(HeaderId id, const uint8_t* p, size_t n) {
  if (!Has(id)) {
    Slot& s = slot[id];
    present |= 1u << id;
    s.p = joined[id];
    s.len = 0;
    s.cut = false;
    s.owned = true;
  } else {
    Append(this, id, reinterpret_cast<const uint8_t*>(", "), 2);
  }
  Append(this, id, p, n);
}

bool FindHeaderName(const uint8_t* name, size_t n, bool request, HeaderId* id, bool* isLength) {
  if (n == 0 || n > kMaxNameLen || (kTables.lengths >> n & 1) == 0) return false;
  const Name* found = Lookup(name, n, n, request);
  if (found == nullptr) return false;
  *isLength = found->id == kLengthId;
  *id = static_cast<HeaderId>(found->id == kLengthId ? 0 : found->id);
  return true;
}

void ReadResponseHeaders(const HeaderValues& h, ResponseHead* out) {
  View server = h.Get(kHdrServer);
  out->serverKong = server.present && StartsWithIgnoreCase(server, "kong/");
  out->via = h.Has(kHdrVia);
  View upgrade = h.Get(kHdrUpgrade);
  out->workerEvents = upgrade.present && StartsWithIgnoreCase(upgrade, "kong-worker-events");
  out->proxyLatencyMs = ParseLatency(h.Get(kHdrProxyLatency));
  out->upstreamLatencyMs = ParseLatency(h.Get(kHdrUpstreamLatency));
  out->responseLatencyMs = ParseLatency(h.Get(kHdrResponseLatency));
  out->grpcStatus = ParseGrpcStatus(h.Get(kHdrGrpcStatus));
}

bool EqualsIgnoreCase(View v, const char* lower, size_t n) {
  if (v.n != n) return false;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = v.p[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<uint8_t>(c | 0x20);
    if (c != static_cast<uint8_t>(lower[i])) return false;
  }
  return true;
}

bool IsGarbageRequestStart(const uint8_t* b, size_t n) {
  if (n > 0 && (b[0] == ' ' || b[0] == '\t')) return true;
  for (size_t i = 0; i < n; i++) {
    uint8_t c = b[i];
    if (c == ' ' || c == '\r' || c == '\n') return false;
    if (c < 0x21 || c > 0x7e) return true;
  }
  return false;
}

bool IsHttp09Line(const uint8_t* b, size_t lineEnd) {
  size_t n = lineEnd > 0 && b[lineEnd - 1] == '\r' ? lineEnd - 1 : lineEnd;
  while (n > 0 && b[n - 1] == ' ') n--;
  size_t at = 0;
  uint8_t version = 0;
  return !VersionSuffix(b, n, &at, &version);
}

bool StartsRequestLine(const uint8_t* b, size_t n) {
  // [A-Z][A-Z_-]{0,19} SP, then a target; a complete line ends with " HTTP/x.y".
  size_t i = 0;
  if (n == 0) return false;
  if (b[0] < 'A' || b[0] > 'Z') return false;
  for (i = 1; i < n && b[i] != ' '; i++) {
    uint8_t c = b[i];
    if (!((c >= 'A' && c <= 'Z') || c == '_' || c == '-') || i > 19) return false;
  }
  if (i >= n) return true;
  if (i + 1 < n && (b[i + 1] == ' ' || b[i + 1] == '\r' || b[i + 1] == '\n')) return false;
  const uint8_t* lf = static_cast<const uint8_t*>(std::memchr(b + i, '\n', n - i));
  if (lf == nullptr) return true;
  size_t le = static_cast<size_t>(lf - b);
  size_t e = le > 0 && b[le - 1] == '\r' ? le - 1 : le;
  size_t sp = 0;
  uint8_t version = 0;
  return VersionSuffix(b, e, &sp, &version) && sp > i;
}

bool StartsStatusLine(const uint8_t* b, size_t n) {
  static const char kPrefix[] = "HTTP/1.";
  if (n >= 12) {
    // the usual case, a whole status line: "HTTP/1.x ddd"
    return std::memcmp(b, kPrefix, 7) == 0 && IsDigit(b[7]) && b[8] == ' ' && IsDigit(b[9]) && IsDigit(b[10]) &&
           IsDigit(b[11]);
  }
  for (size_t i = 0; i < 7 && i < n; i++) {
    if (b[i] != static_cast<uint8_t>(kPrefix[i])) return false;
  }
  if (n > 7 && !IsDigit(b[7])) return false;
  if (n > 8 && b[8] != ' ') return false;
  for (size_t i = 9; i < 12 && i < n; i++) {
    if (!IsDigit(b[i])) return false;
  }
  return true;
}

size_t FindHeadEnd(const uint8_t* b, size_t from, size_t to) {
  size_t i = from;
  while (i < to) {
    const uint8_t* lf = static_cast<const uint8_t*>(std::memchr(b + i, '\n', to - i));
    if (lf == nullptr) return 0;
    size_t at = static_cast<size_t>(lf - b);
    if (at + 1 < to && b[at + 1] == '\n') return at + 2;
    if (at + 2 < to && b[at + 1] == '\r' && b[at + 2] == '\n') return at + 3;
    i = at + 1;
  }
  return 0;
}

size_t ParseRequestHead(const uint8_t* b, size_t n, RequestHead* out) {
  out->headers.Clear();
  out->body = BodyKind::None;
  out->length = 0;
  const uint8_t* lf = static_cast<const uint8_t*>(std::memchr(b, '\n', n));
  if (lf == nullptr) {
    size_t e = n;
    while (e > 0 && b[e - 1] == '\r') e--;
    ParseRequestLine(b, e, false, out);
    return 0;
  }
  const size_t le = static_cast<size_t>(lf - b);
  ParseRequestLine(b, le > 0 && b[le - 1] == '\r' ? le - 1 : le, true, out);
  if (out->garbage) return 0;
  if (out->version == 9) return le + 1;  // HTTP/0.9: the head is the request line
  const size_t end = ScanHeaders(b, le + 1, n, true, &out->headers);
  // Framing as nginx decides it; what it refuses, it answers (400, 501, 505) and then closes.
  const HeaderValues& h = out->headers;
  if (out->version < 10 || out->version > 19) {
    out->body = BodyKind::Unframeable;
  } else if (h.Has(kHdrTransferEncoding)) {
    bool chunked = EqualsIgnoreCase(h.Get(kHdrTransferEncoding), "chunked");
    out->body = chunked && h.lengthLines == 0 ? BodyKind::Chunked : BodyKind::Unframeable;
  } else if (h.lengthLines > 0) {
    if (h.lengthLines > 1 || !h.lengthValid) {
      out->body = BodyKind::Unframeable;
    } else if (h.length > 0) {
      out->body = BodyKind::Length;
      out->length = h.length;
    }
  }
  return end;
}

size_t ParseResponseHead(const uint8_t* b, size_t n, ResponseHead* out) {
  out->headers.Clear();
  out->valid = false;
  const uint8_t* lf = static_cast<const uint8_t*>(std::memchr(b, '\n', n));
  if (lf == nullptr) return 0;
  const size_t le = static_cast<size_t>(lf - b);
  const size_t e = le > 0 && b[le - 1] == '\r' ? le - 1 : le;
  const size_t end = ScanHeaders(b, le + 1, n, false, &out->headers);
  // HTTP/1.x SP 3DIGIT, then nothing or SP and a reason without line breaks.
  if (e < 12 || std::memcmp(b, "HTTP/1.", 7) != 0) return end;
  const uint8_t minor = b[7];
  if ((minor != '0' && minor != '1') || b[8] != ' ') return end;
  uint16_t status = 0;
  for (size_t k = 9; k < 12; k++) {
    if (!IsDigit(b[k])) return end;
    status = static_cast<uint16_t>(status * 10 + (b[k] - '0'));
  }
  if (e > 12 && (b[12] != ' ' || std::memchr(b + 13, '\r', e - 13) != nullptr)) return end;
  if (status < 100) return end;
  out->status = status;
  out->version = minor == '1' ? 11 : 10;
  const HeaderValues& h = out->headers;
  out->length = 0;
  if (status < 200 || status == 204 || status == 304) {
    out->body = BodyKind::None;
  } else if (h.Has(kHdrTransferEncoding)) {
    // only the last coding decides
    View te = h.Get(kHdrTransferEncoding);
    size_t from = 0;
    for (size_t i = 0; i < te.n; i++) {
      if (te.p[i] == ',') from = i + 1;
    }
    out->body = EqualsIgnoreCase(Trim(te.p + from, te.n - from), "chunked") ? BodyKind::Chunked : BodyKind::Close;
  } else if (h.lengthLines > 0) {
    if (!h.lengthValid || !h.lengthsAgree) return end;
    out->body = h.length > 0 ? BodyKind::Length : BodyKind::None;
    out->length = h.length;
  } else {
    out->body = BodyKind::Close;
  }
  View connection = h.Get(kHdrConnection);
  const bool close = connection.present && HasToken(connection, "close");
  const bool keepAlive = connection.present && HasToken(connection, "keep-alive");
  out->closes = close || (out->version == 10 && !keepAlive);
  ReadResponseHeaders(h, out);
  out->valid = true;
  return end;
}

}  // namespace kw
