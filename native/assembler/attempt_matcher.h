// Ties each upstream attempt (CLIENT exchange) to the inbound request (SERVER exchange) it
// serves. Nothing in the bytes links the two sockets, so the match is the score of
// src/requests/assembler.ts over the in-flight inbound requests of the same worker: shared trace
// id or request id, the path (Kong's strip_path makes one a suffix of the other, or they share
// trailing segments), query, method, user agent, the inbound request's attempts so far, and
// recency (an nginx worker is single-threaded: the upstream write follows the inbound read).
#pragma once

#include <cstdint>
#include <unordered_map>

#include "head_parser.h"
#include "trace_context.h"

namespace kw {

struct Exchange;

class AttemptMatcher {
 public:
  // A SERVER exchange whose head is parsed becomes a candidate parent.
  void Register(Exchange* server);
  void Unregister(Exchange* server);
  // The best parent for a CLIENT exchange whose head is parsed, or nullptr (Kong's own calls).
  // The request ids are views of its head (the attempt itself never needs them again).
  Exchange* Match(const Exchange& client, const IncomingContext& ctx, View requestId, View kongRequestId) const;
  // Makes `client` the next attempt of `server` and gives it its ids.
  void Link(Exchange* client, Exchange* server, const IncomingContext& ctx, IdSource& ids);
  // A worker's in-flight SERVER exchanges, oldest to newest.
  struct List {
    Exchange* oldest = nullptr;
    Exchange* newest = nullptr;
  };

 private:
  void SweepEmpty();

  std::unordered_map<uint32_t, List> byPid_;
};

}  // namespace kw
