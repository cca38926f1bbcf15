// The native assembler alone (no Node, no frames copied anywhere): the traffic of
// bench/assembler-native.ts straight into kw::Assembler, to measure and profile its own cost.
//
//   g++ -std=c++17 -O2 -Inative -Ibpf bench/assembler-native.cc native/assembler/*.cc -lnghttp2 \
//       -o .tmp/assembler-bench
//   .tmp/assembler-bench 1000          # batches of 1000 proxied requests (4 records -> 2 frames each)
//   valgrind --tool=callgrind .tmp/assembler-bench 12   # instructions, independent of a noisy VM
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "assembler/assembler.h"

namespace {

struct CountingSink : kw::FrameSink {
  size_t frames = 0;
  size_t bytes = 0;
  void Frame(const uint8_t*, size_t size) override {
    frames++;
    bytes += size;
  }
};

std::string Hex(unsigned n, size_t width) {
  std::string s;
  unsigned x = n;
  char b[16];
  while (s.size() < width) {
    x = x * 2654435761u + 0x9e3779b9u;
    std::snprintf(b, sizeof b, "%08x", x);
    s += b;
  }
  return s.substr(0, width);
}

const std::string kBody = "{\"id\":1042,\"status\":\"shipped\",\"items\":[{\"sku\":\"A-1\",\"qty\":2}]}";
const std::string kUa =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";

std::string ClientRequest(int i) {
  return "GET /api/v1/orders/" + std::to_string(1000 + i) + "?expand=items&page=2 HTTP/1.1\r\n" +
         "Host: api.example.com\r\nUser-Agent: " + kUa + "\r\nAccept: application/json\r\n" +
         "Accept-Encoding: gzip, deflate, br\r\nAccept-Language: en-US,en;q=0.9\r\n" + "traceparent: 00-" +
         Hex(i, 32) + "-" + Hex(i + 7, 16) + "-01\r\ntracestate: vendor=abc\r\n" +
         "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.x\r\nConnection: keep-alive\r\n\r\n";
}

std::string UpstreamRequest(int i) {
  return "GET /orders/" + std::to_string(1000 + i) + "?expand=items&page=2 HTTP/1.1\r\n" +
         "Host: orders.internal:8080\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.1.2.3\r\n" +
         "X-Forwarded-Proto: https\r\nX-Forwarded-Host: api.example.com\r\nX-Forwarded-Port: 443\r\n" +
         "X-Forwarded-Path: /api/v1/orders\r\nX-Real-IP: 10.1.2.3\r\nX-Kong-Request-Id: " + Hex(i + 3, 32) +
         "\r\nUser-Agent: " + kUa + "\r\nAccept: application/json\r\ntraceparent: 00-" + Hex(i, 32) + "-" +
         Hex(i + 11, 16) + "-01\r\ntracestate: vendor=abc\r\n\r\n";
}

std::string UpstreamResponse() {
  return "HTTP/1.1 200 OK\r\nServer: gunicorn\r\nDate: Tue, 24 Nov 2026 12:00:00 GMT\r\n"
         "Content-Type: application/json\r\nContent-Length: " +
         std::to_string(kBody.size()) + "\r\nConnection: keep-alive\r\nCache-Control: no-store\r\n\r\n" + kBody;
}

std::string KongResponse(int i) {
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(kBody.size()) +
         "\r\nConnection: keep-alive\r\nDate: Tue, 24 Nov 2026 12:00:00 GMT\r\nCache-Control: no-store\r\n" +
         "X-Kong-Upstream-Latency: " + std::to_string(i % 17) + "\r\nX-Kong-Proxy-Latency: " + std::to_string(i % 3) +
         "\r\nVia: kong/3.4.2\r\nX-Kong-Request-Id: " + Hex(i + 3, 32) + "\r\n\r\n" + kBody;
}

std::vector<uint8_t> Data(uint64_t conn, uint8_t op, uint8_t dir, uint64_t t, const std::string& bytes) {
  std::vector<uint8_t> r(offsetof(kw_data_event, data) + bytes.size());
  kw_data_event head;
  std::memset(&head, 0, offsetof(kw_data_event, data));
  head.hdr.type = KW_EVENT_DATA;
  head.hdr.pid = 4242;
  head.hdr.timestamp_ns = t;
  head.conn_id = conn;
  head.result = static_cast<int64_t>(bytes.size());
  head.op = op;
  head.direction = dir;
  head.captured_len = static_cast<uint16_t>(bytes.size());
  std::memcpy(r.data(), &head, offsetof(kw_data_event, data));
  std::memcpy(r.data() + offsetof(kw_data_event, data), bytes.data(), bytes.size());
  return r;
}

double CpuNs() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return t.tv_sec * 1e9 + t.tv_nsec;
}

}  // namespace

int main(int argc, char** argv) {
  const int batches = argc > 1 ? std::atoi(argv[1]) : 300;
  constexpr int kConnections = 32;
  constexpr int kRequests = 1000;
  CountingSink sink;
  kw::Assembler assembler(kw::AssemblerOptions(), &sink);
  for (int c = 0; c < kConnections; c++) {
    kw_conn_open_event ev;
    std::memset(&ev, 0, sizeof ev);
    ev.hdr.type = KW_EVENT_CONN_OPEN;
    ev.hdr.pid = 4242;
    ev.family = 2;
    ev.conn_id = 1 + c;
    ev.direction = KW_DIR_SERVER;
    ev.local_port = 8000;
    assembler.Record(&ev, sizeof ev);
    ev.conn_id = 1001 + c;
    ev.direction = KW_DIR_CLIENT;
    ev.local_port = static_cast<uint16_t>(50000 + c);
    assembler.Record(&ev, sizeof ev);
  }
  // A few distinct batches, built up front, replayed: only Record() is timed.
  std::vector<std::vector<std::vector<uint8_t>>> recorded(8);
  for (size_t b = 0; b < recorded.size(); b++) {
    uint64_t t = 1'000'000'000'000ull + b * 10'000'000ull;
    for (int i = 0; i < kRequests; i++) {
      const int c = i % kConnections;
      recorded[b].push_back(Data(1 + c, KW_OP_READ, KW_DIR_SERVER, t += 2000, ClientRequest(i)));
      recorded[b].push_back(Data(1001 + c, KW_OP_WRITE, KW_DIR_CLIENT, t += 2000, UpstreamRequest(i)));
      recorded[b].push_back(Data(1001 + c, KW_OP_READ, KW_DIR_CLIENT, t += 2000, UpstreamResponse()));
      recorded[b].push_back(Data(1 + c, KW_OP_WRITE, KW_DIR_SERVER, t += 2000, KongResponse(i)));
    }
  }
  for (const auto& rec : recorded[0]) assembler.Record(rec.data(), rec.size());  // warm-up
  const double t0 = CpuNs();
  for (int b = 0; b < batches; b++) {
    for (const auto& rec : recorded[b % recorded.size()]) assembler.Record(rec.data(), rec.size());
  }
  const double ns = CpuNs() - t0;
  const kw::AssemblerStats s = assembler.Stats();
  std::printf("%.0f ns CPU per proxied request (4 records -> 2 frames); %zu frames, %zu bytes; in flight %llu, "
              "protocol errors %llu\n",
              ns / (static_cast<double>(batches) * kRequests), sink.frames, sink.bytes,
              static_cast<unsigned long long>(s.inFlight), static_cast<unsigned long long>(s.protocolErrors));
  return s.inFlight == 0 && s.protocolErrors == 0 ? 0 : 1;
}
