// What every connection of one assembler shares: options, counters, the id source, the pools,
// the attempt matcher and the way out. One assembler runs on one thread: nothing here locks.
#pragma once

#include <cstdint>
#include <vector>

#include "assembler.h"
#include "attempt_matcher.h"
#include "emitter.h"
#include "exchange.h"
#include "frame_writer.h"
#include "h2_session.h"
#include "hpack.h"
#include "id_source.h"
#include "message_framer.h"

namespace kw {

// The time of each worker's latest syscall record. An nginx worker runs one thing at a time, so
// the record before one of its syscalls says when it was done with what came before.
class PidClock {
 public:
  // Records pid's syscall at nowNs; returns the time of its previous one (0 if none).
  uint64_t Tick(uint32_t pid, uint64_t nowNs) {
    if (last_ < entries_.size() && entries_[last_].pid == pid) return Swap(&entries_[last_], nowNs);
    for (size_t i = 0; i < entries_.size(); i++) {
      if (entries_[i].pid != pid) continue;
      last_ = i;
      return Swap(&entries_[i], nowNs);
    }
    // Workers are few; pids of processes gone are forgotten all at once past the bound.
    if (entries_.size() >= kMaxPids) entries_.clear();
    entries_.push_back(Entry{pid, nowNs});
    last_ = entries_.size() - 1;
    return 0;
  }

 private:
  struct Entry {
    uint32_t pid;
    uint64_t ns;
  };
  static constexpr size_t kMaxPids = 1024;
  static uint64_t Swap(Entry* e, uint64_t nowNs) {
    const uint64_t prev = e->ns;
    if (nowNs > e->ns) e->ns = nowNs;
    return prev;
  }
  std::vector<Entry> entries_;
  size_t last_ = 0;
};

struct Context {
  Context(const AssemblerOptions& opts, FrameSink* sink)
      : options(opts), writer(sink, &stats), emitter(&writer, &pool, &matcher), ignoredPort(65536, false) {
    framing.stats = &stats;
    hpack.lost = &stats.hpackLost;
    hpack.memory.SetLimit(static_cast<size_t>(options.maxHpackBytes));
    for (uint16_t port : options.ignoredLocalPorts) ignoredPort[port] = true;
    if (options.maxPendingPerConnection == 0) options.maxPendingPerConnection = 1;
    if (options.maxConnections == 0) options.maxConnections = 1;
  }

  AssemblerOptions options;
  AssemblerStats stats;
  FramerShared framing;
  HpackShared hpack;
  H2Scratch h2;
  IdSource ids;
  ExchangePool pool;
  AttemptMatcher matcher;
  FrameWriter writer;
  Emitter emitter;
  std::vector<bool> ignoredPort;
  PidClock clock;
  uint64_t nextExchangeId = 1;
};

}  // namespace kw
