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
#include "id_source.h"
#include "message_framer.h"

namespace kw {

struct Context {
  Context(const AssemblerOptions& opts, FrameSink* sink)
      : options(opts), writer(sink, &stats), emitter(&writer, &pool, &matcher), ignoredPort(65536, false) {
    framing.stats = &stats;
    for (uint16_t port : options.ignoredLocalPorts) ignoredPort[port] = true;
    if (options.maxPendingPerConnection == 0) options.maxPendingPerConnection = 1;
    if (options.maxConnections == 0) options.maxConnections = 1;
  }

  AssemblerOptions options;
  AssemblerStats stats;
  FramerShared framing;
  IdSource ids;
  ExchangePool pool;
  AttemptMatcher matcher;
  FrameWriter writer;
  Emitter emitter;
  std::vector<bool> ignoredPort;
  uint64_t nextExchangeId = 1;
};

}  // namespace kw
