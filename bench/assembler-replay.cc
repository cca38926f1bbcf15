// The native assembler alone on recorded records (no Node): a file of [u32 LE size][record] as
// bench/assembler-h2.ts writes it (ASSEMBLER_BENCH_DUMP), fed to a fresh kw::Assembler `runs`
// times, to measure and profile its own cost (perf record, valgrind --tool=callgrind).
//
//   g++ -std=c++17 -O2 -Inative -Ibpf bench/assembler-replay.cc native/assembler/*.cc -lnghttp2 \
//       -o .tmp/assembler-replay
//   .tmp/assembler-replay .tmp/h2.records 5
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "assembler/assembler.h"

namespace {

struct CountingSink : kw::FrameSink {
  size_t frames = 0;
  void Frame(const uint8_t*, size_t) override { frames++; }
};

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s <records file> [runs]\n", argv[0]);
    return 2;
  }
  const int runs = argc > 2 ? std::atoi(argv[2]) : 5;
  FILE* f = std::fopen(argv[1], "rb");
  if (f == nullptr) {
    std::perror(argv[1]);
    return 1;
  }
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) bytes.insert(bytes.end(), buf, buf + n);
  std::fclose(f);
  std::vector<std::pair<size_t, uint32_t>> records;  // offset, size
  for (size_t at = 0; at + 4 <= bytes.size();) {
    uint32_t size;
    std::memcpy(&size, bytes.data() + at, 4);
    at += 4;
    if (size > bytes.size() - at) break;
    records.emplace_back(at, size);
    at += size;
  }
  double best = 1e300;
  size_t exchanges = 0;
  for (int r = 0; r < runs; r++) {
    CountingSink sink;
    kw::AssemblerOptions options;
    kw::Assembler a(options, &sink);
    const double t0 = CpuSeconds();
    for (const auto& rec : records) a.Record(bytes.data() + rec.first, rec.second);
    const double t = CpuSeconds() - t0;
    if (t < best) best = t;
    exchanges = a.Stats().exchanges;
  }
  std::printf("%zu records, %zu exchanges: best of %d runs %.0f ns CPU per exchange pair (one proxied request)\n",
              records.size(), exchanges, runs, best * 1e9 / (exchanges / 2.0));
  return 0;
}
