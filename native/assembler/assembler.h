// The native assembler: kernel records (bpf/kong_watcher_events.h) in, finished exchanges and
// process events (native/kw_exchange.h) out. It owns every per-connection fact: HTTP/1.x framing,
// pairing of requests and responses, HTTP/2 streams and their HPACK state, timing, trace context
// and ids, and the link from each upstream attempt to the request it serves. It runs on the drain thread (one thread, no locks);
// the Assembler JS class (tests, replay) drives one synchronously.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "kw_exchange.h"

namespace kw {

struct AssemblerOptions {
  // Local ports of accepted sockets whose traffic is not reported (Kong's Admin API, Manager).
  std::vector<uint16_t> ignoredLocalPorts;
  // Connections followed at once; the least recently used is finished (KW_ERR_EVICTED) beyond it.
  uint32_t maxConnections = 65536;
  // Requests kept per connection while they wait for their answer (pipelining; HTTP/2 streams in
  // flight at once). Beyond it a request is still counted, so that pairing never shifts, but it is
  // not reported.
  uint32_t maxPendingPerConnection = 128;
  // An unfinished exchange on a connection silent this long is reported with KW_ERR_TIMEOUT.
  uint64_t pendingTimeoutNs = 300'000'000'000ULL;
  // A connection with nothing in flight, silent this long, is forgotten (its close was lost).
  uint64_t idleConnectionNs = 900'000'000'000ULL;
  // HPACK decoding memory of all HTTP/2 connections together (dynamic tables, fields being decoded);
  // past it a table is given up and its blocks are read from the static table (hpackLost).
  uint64_t maxHpackBytes = 64ull << 20;
};

// Counters since the assembler was made, plus what is in flight now.
struct AssemblerStats {
  uint64_t records = 0;           // kernel records taken
  uint64_t malformedRecords = 0;  // records whose sizes did not add up (skipped)
  uint64_t exchanges = 0;         // exchange frames written (SERVER + CLIENT)
  uint64_t serverExchanges = 0;
  uint64_t clientExchanges = 0;
  uint64_t connections = 0;       // followed now
  uint64_t inFlight = 0;          // requests waiting for their answer now (both directions)
  uint64_t evicted = 0;           // connections finished to stay within maxConnections
  uint64_t ignored = 0;           // connections not followed: ignored ports, upgrades
  uint64_t notHttp = 0;           // outbound connections given up because Kong did not speak HTTP/1.x on them
  uint64_t protocolErrors = 0;    // HTTP/1 messages that could not be framed (the stream resynchronised after
                                  // them); HTTP/2 connections that broke the protocol (no longer followed)
  uint64_t skippedBytes = 0;      // bytes passed over while resynchronising
  uint64_t lostHeads = 0;         // heads (HTTP/1 heads, HTTP/2 frame headers) in bytes the kernel did not copy
  uint64_t orphanResponses = 0;   // responses with no request to pair with (older than the agent)
  uint64_t droppedRequests = 0;   // counted but not reported: over maxPendingPerConnection, or never served
  uint64_t unmatchedAttempts = 0; // upstream calls that matched no inbound request (Kong's own traffic)
  uint64_t processExits = 0;      // monitored processes that exited
  uint64_t http2Connections = 0;  // connections followed as HTTP/2 (h2 over TLS, h2c, grpc_pass)
  uint64_t hpackLost = 0;         // HTTP/2 connections (or directions) whose HPACK table history is unknown:
                                  // older than the agent, or a header block not copied; read from the static table
  // SERVER requests in flight now, by enum kw_method and TLS (0 plain, 1 TLS).
  uint64_t activeServer[KW_METHOD_MAX][2] = {};
};

// Receives frames in order. A frame is only valid during the call: copy it.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void Frame(const uint8_t* data, size_t size) = 0;
};

class Assembler {
 public:
  Assembler(const AssemblerOptions& options, FrameSink* sink);
  ~Assembler();
  Assembler(const Assembler&) = delete;
  Assembler& operator=(const Assembler&) = delete;

  // One kernel record as the ring buffer holds it. Never throws: bad input is counted.
  void Record(const void* data, size_t size);
  // Reports exchanges stuck on silent connections and forgets idle ones (call about once a second).
  void FlushIdle(uint64_t nowNs);
  // Shutdown: reports everything unfinished with KW_ERR_AGENT_STOPPED.
  void FlushAll(uint64_t nowNs);
  AssemblerStats Stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kw
