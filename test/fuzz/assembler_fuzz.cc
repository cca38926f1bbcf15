// libFuzzer target for the native assembler (native/assembler/): the input is a small program of
// kernel records (opens, reads and writes with arbitrary payloads and sizes, closes, Lua phases,
// process events, raw records, flushes), so that deep connection states are reached; payloads may
// also be HTTP/2 built from the input (a preface, then frames whose headers and HPACK blocks come
// from the fuzzer), so that the frame reader, HPACK decoding and stream states are reached too.
// Checked: no crash or sanitizer report, every frame well formed, state within its bounds, and
// never more exchanges than places where a request could start. Build and run: test/fuzz/run.sh.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "assembler/assembler.h"

namespace {

constexpr uint32_t kMaxConnections = 8;
constexpr uint32_t kMaxPending = 4;

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "assembler_fuzz: invariant broken: %s\n", what);
  std::abort();
}

class CheckingSink : public kw::FrameSink {
 public:
  uint64_t exchanges = 0;

  void Frame(const uint8_t* data, size_t size) override {
    Check(size >= 8 && size % 8 == 0, "frame size a multiple of 8");
    if (data[0] == KW_FRAME_PROC) {
      Check(size == sizeof(kw_proc_frame), "proc frame size");
      return;
    }
    Check(data[0] == KW_FRAME_SERVER || data[0] == KW_FRAME_CLIENT, "frame type");
    Check(size >= sizeof(kw_exchange), "exchange frame size");
    kw_exchange f;
    std::memcpy(&f, data, sizeof f);
    Check(f.frame_size == size, "frame_size");
    Check(f.method < KW_METHOD_MAX, "method");
    Check(f.error < KW_ERR_MAX, "error");
    Check(f.end_ns >= f.start_ns, "end after start");
    const struct {
      kw_str s;
      uint32_t max;
    } strings[] = {
        {f.method_text, KW_MAX_METHOD_TEXT}, {f.path, KW_MAX_TARGET},           {f.query, KW_MAX_TARGET},
        {f.host, KW_MAX_HOST},               {f.user_agent, KW_MAX_USER_AGENT}, {f.trace_state, KW_MAX_TRACE_STATE},
        {f.content_type, KW_MAX_CONTENT_TYPE},
    };
    for (const auto& s : strings) {
      if (s.s.offset == 0) {
        Check(s.s.length == 0, "absent string without length");
        continue;
      }
      Check(s.s.offset >= sizeof(kw_exchange), "string after the struct");
      Check(static_cast<uint64_t>(s.s.offset) + s.s.length <= size, "string inside the frame");
      Check(s.s.length <= s.max, "string bound");
    }
    Check(f.path.length + f.query.length <= KW_MAX_TARGET, "target bound");
    bool zero = true;
    for (uint8_t b : f.span_id) zero = zero && b == 0;
    Check(!zero, "span id set");
    exchanges++;
  }
};

// Reads the fuzzer's bytes as a program.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : p_(data), n_(size) {}
  bool More() const { return at_ < n_; }
  uint8_t U8() { return at_ < n_ ? p_[at_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | U8() << 8); }
  const uint8_t* Bytes(size_t want, size_t* got) {
    *got = want < n_ - at_ ? want : n_ - at_;
    const uint8_t* b = p_ + at_;
    at_ += *got;
    return b;
  }

 private:
  const uint8_t* p_;
  size_t n_;
  size_t at_ = 0;
};

void Header(kw_event_header* h, uint8_t type, uint32_t pid, uint64_t t) {
  h->type = type;
  h->pid = pid;
  h->timestamp_ns = t;
}

// Where requests could start in these bytes: HTTP/1 lines, or HTTP/2 HEADERS (9 bytes at least).
uint64_t CountStarts(const uint8_t* b, size_t n) {
  uint64_t starts = 0;
  for (size_t i = 0; i < n; i++) starts += b[i] == '\n';
  return starts > n / 9 ? starts : n / 9;
}

// HTTP/2 from the input: maybe the client preface, then frames of any type, flags, small stream ids
// and lengths, their payloads taken from the input (HPACK blocks included).
void H2Payload(Input& in, std::vector<uint8_t>* out) {
  static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  out->clear();
  const uint8_t shape = in.U8();
  if (shape & 1) out->insert(out->end(), kPreface, kPreface + sizeof kPreface - 1);
  const int frames = 1 + (shape >> 1) % 6;
  for (int i = 0; i < frames && in.More(); i++) {
    const uint8_t type = in.U8() % 11;
    const uint8_t flags = in.U8();
    const uint8_t stream = in.U8() % 8;
    size_t got = 0;
    const uint8_t* payload = in.Bytes(in.U8(), &got);
    const uint8_t head[9] = {0, 0, static_cast<uint8_t>(got), type, flags, 0, 0, 0, stream};
    out->insert(out->end(), head, head + 9);
    out->insert(out->end(), payload, payload + got);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  kw::AssemblerOptions options;
  options.maxConnections = kMaxConnections;
  options.maxPendingPerConnection = kMaxPending;
  options.pendingTimeoutNs = 1'000'000;
  options.idleConnectionNs = 5'000'000;
  options.ignoredLocalPorts = {8001};
  // HPACK tables past this fail to allocate: decoders fall back to the static table mid-stream.
  options.maxHpackBytes = 2048 + (size > 0 ? data[0] % 4 : 0) * 4096;
  CheckingSink sink;
  uint64_t starts = 0;
  {
    kw::Assembler a(options, &sink);
    Input in(data, size);
    uint64_t t = 1'000'000'000;
    std::vector<uint8_t> rec;
    std::vector<uint8_t> h2;
    while (in.More()) {
      const uint8_t op = in.U8();
      const uint8_t conn = in.U8() % 10;
      t += 1 + in.U8() * 1000ull;
      const uint32_t pid = 100 + conn % 3;
      switch (op % 8) {
        case 0: {
          kw_conn_open_event ev;
          std::memset(&ev, 0, sizeof ev);
          Header(&ev.hdr, KW_EVENT_CONN_OPEN, pid, t);
          ev.conn_id = conn;
          ev.direction = in.U8() % 3;
          ev.family = 2;
          ev.local_port = in.U8() % 4 == 0 ? 8001 : 8000;
          a.Record(&ev, sizeof ev);
          break;
        }
        case 1:
        case 2:
        case 3: {
          const uint8_t mode = in.U8();
          size_t got = 0;
          const uint8_t* payload;
          if (((mode >> 3) & 7) == 7) {
            H2Payload(in, &h2);
            payload = h2.data();
            got = h2.size() < 2048 ? h2.size() : 2048;
          } else {
            payload = in.Bytes(in.U16() % 2048, &got);
          }
          kw_data_event head;
          std::memset(&head, 0, offsetof(kw_data_event, data));
          Header(&head.hdr, KW_EVENT_DATA, pid, t);
          head.conn_id = conn;
          head.op = 1 + (mode & 1);
          head.direction = (mode >> 1) % 3;
          int64_t result = static_cast<int64_t>(got);
          switch ((mode >> 3) & 7) {
            case 0: result = got + in.U16() * 16ll; break;  // a middle not copied
            case 1: result = -static_cast<int64_t>(in.U8() % 120); break;
            case 2: result = 0; break;
            default: break;
          }
          const size_t captured = result <= 0 ? 0 : (static_cast<uint64_t>(result) < got ? result : got);
          head.result = result;
          head.captured_len = static_cast<uint16_t>(captured);
          head.flags = (mode >> 6) & 3;  // TAIL_UNKNOWN, TLS
          if (result > 0 && static_cast<uint64_t>(result) > captured) {
            head.flags |= KW_DATA_TRUNCATED;
            size_t tailGot = 0;
            const uint8_t* tail = in.Bytes(KW_TAIL_LEN, &tailGot);
            head.tail_len = static_cast<uint16_t>(tailGot < static_cast<uint64_t>(result) ? tailGot : result);
            std::memcpy(head.tail, tail, head.tail_len);
            if ((head.flags & KW_DATA_TAIL_UNKNOWN) == 0) starts += CountStarts(head.tail, head.tail_len);
          }
          if (result > 0) starts += 1 + CountStarts(payload, captured);
          const uint8_t* fixed = reinterpret_cast<const uint8_t*>(&head);
          rec.assign(fixed, fixed + offsetof(kw_data_event, data));
          rec.insert(rec.end(), payload, payload + captured);
          a.Record(rec.data(), rec.size());
          break;
        }
        case 4: {
          kw_conn_close_event ev;
          std::memset(&ev, 0, sizeof ev);
          Header(&ev.hdr, KW_EVENT_CONN_CLOSE, pid, t);
          ev.conn_id = conn;
          ev.peer_state = in.U8() % 4;
          a.Record(&ev, sizeof ev);
          break;
        }
        case 5: {
          kw_lua_phase_event ev;
          std::memset(&ev, 0, sizeof ev);
          Header(&ev.hdr, KW_EVENT_LUA_PHASE, pid, t);
          ev.conn_id = conn;
          ev.phase = in.U8() % 10;
          ev.start_ns = in.U16();
          ev.end_ns = in.U16();
          a.Record(&ev, sizeof ev);
          break;
        }
        case 6: {
          kw_proc_event ev;
          std::memset(&ev, 0, sizeof ev);
          Header(&ev.hdr, KW_EVENT_PROC, pid, t);
          ev.event = 1 + in.U8() % 3;
          a.Record(&ev, sizeof ev);
          break;
        }
        case 7: {
          if (in.U8() & 1) {
            a.FlushIdle(t + in.U16() * 1000ull);
          } else {
            size_t got = 0;
            const uint8_t* raw = in.Bytes(in.U8() * 2u, &got);
            // Any bytes as a record: refused, or read safely (a DATA one may start requests).
            if (got > 0 && raw[0] == KW_EVENT_DATA) starts += 1 + CountStarts(raw, got);
            a.Record(raw, got);
          }
          break;
        }
      }
      kw::AssemblerStats s = a.Stats();
      Check(s.connections <= kMaxConnections, "connections bounded");
      Check(s.inFlight <= s.connections * kMaxPending, "pending bounded");
    }
    a.FlushAll(t + 1);
    kw::AssemblerStats s = a.Stats();
    Check(s.connections == 0 && s.inFlight == 0, "nothing left after FlushAll");
    for (const auto& m : s.activeServer) Check(m[0] == 0 && m[1] == 0, "no active request after FlushAll");
    Check(s.exchanges == sink.exchanges, "exchange counter");
  }
  Check(sink.exchanges <= starts, "no more exchanges than request starts");
  return 0;
}
