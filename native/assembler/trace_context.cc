#include "trace_context.h"

#include <cstring>

#include "kw_exchange.h"

namespace kw {

namespace {

// Hex digit values by character: lower-case only, or either case; -1 for anything else.
struct HexTables {
  int8_t lower[256];
  int8_t any[256];
  HexTables() {
    for (int c = 0; c < 256; c++) {
      lower[c] = -1;
      if (c >= '0' && c <= '9') lower[c] = static_cast<int8_t>(c - '0');
      if (c >= 'a' && c <= 'f') lower[c] = static_cast<int8_t>(c - 'a' + 10);
      any[c] = c >= 'A' && c <= 'F' ? static_cast<int8_t>(c - 'A' + 10) : lower[c];
    }
  }
};
const HexTables kHex;

uint8_t AsciiLower(uint8_t c) { return c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c | 0x20) : c; }

// Per byte of x (all below 0x80): the high bit set where lo < byte < hi.
uint64_t Between(uint64_t x, uint8_t lo, uint8_t hi) {
  constexpr uint64_t kOnes = 0x0101010101010101ull;
  constexpr uint64_t kLow7 = 0x7f7f7f7f7f7f7f7full;
  constexpr uint64_t kHigh = 0x8080808080808080ull;
  const uint64_t low = x & kLow7;
  return (kOnes * (127 + hi) - low) & ~x & (low + kOnes * (127 - lo)) & kHigh;
}

// 8 hex characters -> 4 bytes, eight at a time (a traceparent is 52 of them): false unless all
// are hex digits, lower-case unless `fold`.
bool Hex8(const uint8_t* p, bool fold, uint8_t* out) {
  uint64_t x;
  std::memcpy(&x, p, 8);
  const uint64_t digit = Between(x, '0' - 1, '9' + 1);
  uint64_t letter = Between(x, 'a' - 1, 'f' + 1);
  if (fold) letter |= Between(x, 'A' - 1, 'F' + 1);
  if ((digit | letter) != 0x8080808080808080ull) return false;
  // '0'-'9' and 'a'-'f' / 'A'-'F' both keep their value in the low nibble, letters plus 9.
  const uint64_t nibbles = (x & 0x0f0f0f0f0f0f0f0full) + (letter >> 7) * 9;
  uint64_t pairs = ((nibbles << 4) | (nibbles >> 8)) & 0x00ff00ff00ff00ffull;
  pairs = (pairs | (pairs >> 8)) & 0x0000ffff0000ffffull;
  pairs = (pairs | (pairs >> 16)) & 0xffffffffull;
  const uint32_t bytes = static_cast<uint32_t>(pairs);
  std::memcpy(out, &bytes, 4);
  return true;
}

// `digits` hex characters -> bytes; lower-case only unless `fold` (B3 is read in any case).
bool Hex(const uint8_t* p, size_t digits, bool fold, uint8_t* out) {
  size_t i = 0;
  for (; i + 8 <= digits; i += 8) {
    if (!Hex8(p + i, fold, out + i / 2)) return false;
  }
  const int8_t* value = fold ? kHex.any : kHex.lower;
  int bad = 0;
  for (; i < digits; i += 2) {
    const int hi = value[p[i]];
    const int lo = value[p[i + 1]];
    bad |= hi | lo;
    out[i / 2] = static_cast<uint8_t>((hi & 0xf) << 4 | (lo & 0xf));
  }
  return bad >= 0;
}

bool AllZero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (p[i] != 0) return false;
  }
  return true;
}

bool IsChar(View v, char c) { return v.n == 1 && AsciiLower(v.p[0]) == static_cast<uint8_t>(c); }

// 32 hex digits, or 16 (a 64-bit id, left-padded), never all zero.
bool B3TraceId(View v, uint8_t out[16]) {
  if (v.n == 16) {
    std::memset(out, 0, 8);
    if (!Hex(v.p, 16, true, out + 8)) return false;
  } else if (v.n == 32) {
    if (!Hex(v.p, 32, true, out)) return false;
  } else {
    return false;
  }
  return !AllZero(out, 16);
}

bool B3SpanId(View v, uint8_t out[8]) { return v.n == 16 && Hex(v.p, 16, true, out) && !AllZero(out, 8); }

}  // namespace

bool ParseTraceparent(View value, IncomingContext* out) {
  View v = Trim(value.p, value.n);
  const uint8_t* s = v.p;
  const size_t n = v.n;
  if (n < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-') return false;
  uint8_t version = 0;
  uint8_t flags = 0;
  uint8_t trace[16];
  uint8_t span[8];
  if (!Hex(s, 2, false, &version) || !Hex(s + 3, 32, false, trace) || !Hex(s + 36, 16, false, span) ||
      !Hex(s + 53, 2, false, &flags)) {
    return false;
  }
  if (n > 55) {
    // Version 00 has exactly four fields; later versions may append more after a dash.
    if (s[55] != '-') return false;
    for (size_t i = 56; i < n; i++) {
      if (s[i] == '\n' || s[i] == '\r') return false;
    }
  }
  if (version == 0xff || (version == 0 && n > 55)) return false;
  if (AllZero(trace, 16) || AllZero(span, 8)) return false;
  out->any = true;
  out->hasTrace = true;
  std::memcpy(out->traceId, trace, 16);
  std::memcpy(out->spanId, span, 8);
  out->sampled = static_cast<int8_t>(flags & 1);
  out->traceState = View();
  return true;
}

bool ParseB3Single(View value, IncomingContext* out) {
  View v = Trim(value.p, value.n);
  *out = IncomingContext();
  if (IsChar(v, '0')) {
    out->any = true;
    out->sampled = 0;
    return true;
  }
  if (IsChar(v, '1') || IsChar(v, 'd')) {
    out->any = true;
    out->sampled = 1;
    return true;
  }
  View parts[5];
  size_t count = 0;
  size_t from = 0;
  for (size_t i = 0; i <= v.n; i++) {
    if (i == v.n || v.p[i] == '-') {
      if (count == 5) return false;
      parts[count++] = View{v.p + from, static_cast<uint32_t>(i - from), true};
      from = i + 1;
    }
  }
  if (count < 2 || count > 4) return false;
  uint8_t trace[16];
  uint8_t span[8];
  if (!B3TraceId(parts[0], trace) || !B3SpanId(parts[1], span)) return false;
  int8_t sampled = -1;
  if (count >= 3) {
    if (IsChar(parts[2], '1') || IsChar(parts[2], 'd')) {
      sampled = 1;
    } else if (IsChar(parts[2], '0')) {
      sampled = 0;
    } else {
      return false;
    }
  }
  uint8_t parent[8];
  if (count == 4 && (parts[3].n != 16 || !Hex(parts[3].p, 16, true, parent))) return false;
  out->any = true;
  out->hasTrace = true;
  std::memcpy(out->traceId, trace, 16);
  std::memcpy(out->spanId, span, 8);
  out->sampled = sampled;
  return true;
}

bool ParseB3Multi(const HeaderValues& h, IncomingContext* out) {
  *out = IncomingContext();
  int8_t sampled = -1;
  View flag = h.Get(kHdrB3Sampled);
  if (flag.present) {
    View f = Trim(flag.p, flag.n);
    if (EqualsIgnoreCase(f, "1") || EqualsIgnoreCase(f, "true")) {
      sampled = 1;
    } else if (EqualsIgnoreCase(f, "0") || EqualsIgnoreCase(f, "false")) {
      sampled = 0;
    }
  }
  View debug = h.Get(kHdrB3Flags);
  if (debug.present) {
    View d = Trim(debug.p, debug.n);
    if (d.n == 1 && d.p[0] == '1') sampled = 1;  // debug implies sampled
  }
  View rawTrace = h.Get(kHdrB3TraceId);
  View rawSpan = h.Get(kHdrB3SpanId);
  uint8_t trace[16];
  uint8_t span[8];
  if (!rawTrace.present || !rawSpan.present || !B3TraceId(Trim(rawTrace.p, rawTrace.n), trace) ||
      !B3SpanId(Trim(rawSpan.p, rawSpan.n), span)) {
    if (sampled < 0) return false;
    out->any = true;
    out->sampled = sampled;
    return true;
  }
  out->any = true;
  out->hasTrace = true;
  std::memcpy(out->traceId, trace, 16);
  std::memcpy(out->spanId, span, 8);
  out->sampled = sampled;
  return true;
}

void ReadIncomingContext(const HeaderValues& h, IncomingContext* out) {
  *out = IncomingContext();
  View tp = h.Get(kHdrTraceparent);
  if (tp.present && ParseTraceparent(tp, out)) {
    View state = h.Get(kHdrTracestate);
    if (state.present && !h.Cut(kHdrTracestate)) {
      View s = Trim(state.p, state.n);
      if (s.n > 0 && s.n <= KW_MAX_TRACE_STATE) out->traceState = s;
    }
    return;
  }
  *out = IncomingContext();
  IncomingContext single;
  View b3 = h.Get(kHdrB3);
  bool haveSingle = b3.present && ParseB3Single(b3, &single);
  if (haveSingle && single.hasTrace) {
    *out = single;
    return;
  }
  IncomingContext multi;
  bool haveMulti = ParseB3Multi(h, &multi);
  if (haveMulti && multi.hasTrace) {
    *out = multi;
    return;
  }
  if (haveSingle) {
    *out = single;
  } else if (haveMulti) {
    *out = multi;
  }
}

void ServerIds(const IncomingContext& ctx, IdSource& ids, TraceIds* out) {
  *out = TraceIds();
  out->sampled = ctx.sampled != 0;
  out->sampledStated = ctx.sampled >= 0;
  ids.SpanId(out->spanId);
  if (ctx.hasTrace) {
    std::memcpy(out->traceId, ctx.traceId, 16);
    std::memcpy(out->parentSpanId, ctx.spanId, 8);
    out->hasParent = true;
    out->remoteParent = true;
    return;
  }
  ids.TraceId(out->traceId);
}

void ClientIds(TraceIds* parent, const IncomingContext& ctx, IdSource& ids, TraceIds* out) {
  *out = TraceIds();
  if (parent == nullptr) {
    if (ctx.hasTrace) {
      std::memcpy(out->traceId, ctx.traceId, 16);
      std::memcpy(out->spanId, ctx.spanId, 8);
      out->sampled = ctx.sampled != 0;
      out->sampledStated = ctx.sampled >= 0;
      return;
    }
    ids.TraceId(out->traceId);
    ids.SpanId(out->spanId);
    return;
  }
  if (ctx.hasTrace && std::memcmp(ctx.traceId, parent->traceId, 16) != 0 && !parent->remoteParent) {
    std::memcpy(parent->traceId, ctx.traceId, 16);
  }
  const bool propagated = ctx.hasTrace && std::memcmp(ctx.traceId, parent->traceId, 16) == 0 &&
                          (!parent->hasParent || std::memcmp(ctx.spanId, parent->parentSpanId, 8) != 0);
  std::memcpy(out->traceId, parent->traceId, 16);
  if (propagated) {
    std::memcpy(out->spanId, ctx.spanId, 8);
  } else {
    ids.SpanId(out->spanId);
  }
  std::memcpy(out->parentSpanId, parent->spanId, 8);
  out->hasParent = true;
  out->sampled = parent->sampled;
  out->sampledStated = parent->sampledStated;
}

}  // namespace kw
