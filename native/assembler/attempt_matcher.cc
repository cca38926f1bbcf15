#include "attempt_matcher.h"

#include <cstring>

#include "exchange.h"

namespace kw {

namespace {

// Below this score an upstream call is taken for Kong's own traffic (database, DNS, exporters).
constexpr double kMinScore = 2;
// In-flight inbound requests considered per worker; older ones are still tracked, never matched.
constexpr int kMaxCandidates = 4096;
// Worker pids whose empty lists are kept before the empty ones are dropped.
constexpr size_t kMaxIdleWorkerLists = 256;
// Span ids remembered per inbound request for the "retry reuses a propagated id" check.
constexpr size_t kMaxAttemptSpans = 64;

struct Bytes {
  const uint8_t* p;
  size_t n;
};

Bytes Of(const Exchange& ex, const Str& s) {
  if (!s.present) return Bytes{nullptr, 0};
  return Bytes{ex.Bytes(s), s.len};
}

bool Same(const Exchange& a, const Str& sa, const Exchange& b, const Str& sb) {
  return sa.present && sb.present && sa.len == sb.len && std::memcmp(a.Bytes(sa), b.Bytes(sb), sa.len) == 0;
}

bool SameView(View a, const Exchange& b, const Str& sb) {
  return a.present && sb.present && a.n == sb.len && std::memcmp(a.p, b.Bytes(sb), a.n) == 0;
}

// One path ends with the other at a segment boundary (strip_path, or a service path prefix).
bool IsSuffix(Bytes a, Bytes b) {
  Bytes s = a.n <= b.n ? a : b;
  Bytes l = a.n <= b.n ? b : a;
  if (s.n <= 1 || std::memcmp(l.p + (l.n - s.n), s.p, s.n) != 0) return false;
  return s.p[0] == '/' || (l.n > s.n && l.p[l.n - s.n - 1] == '/');
}

// strip_path onto a service with its own path (/fail/r7 -> /status/500/r7): the paths share
// whole trailing segments. Worth 1, plus a fraction that prefers the longest shared tail.
double SharedTail(Bytes client, Bytes server) {
  size_t n = 0;
  size_t max = client.n < server.n ? client.n : server.n;
  while (n < max && client.p[client.n - 1 - n] == server.p[server.n - 1 - n]) n++;
  // the shared part must start at a '/' inside the server path and hold at least one segment
  size_t from = server.n - n;
  const void* hit = n > 0 ? std::memchr(server.p + from, '/', server.n - from) : nullptr;
  if (hit == nullptr) return 0;
  size_t slash = static_cast<size_t>(static_cast<const uint8_t*>(hit) - server.p);
  if (slash == 0 || slash >= server.n - 1) return 0;
  size_t tail = server.n - slash;
  return 1 + static_cast<double>(tail < 65535 ? tail : 65535) / 65536;
}

bool SameMethod(const Exchange& a, const Exchange& b) {
  if (a.f.method != b.f.method) return false;
  if (a.f.method != 0) return true;
  if (!a.methodText.present || !b.methodText.present) return a.methodText.present == b.methodText.present;
  return Same(a, a.methodText, b, b.methodText);
}

}  // namespace

void AttemptMatcher::Register(Exchange* server) {
  if (server->listed) return;
  List& list = byPid_[server->f.pid];
  server->pidPrev = list.newest;
  server->pidNext = nullptr;
  if (list.newest != nullptr) {
    list.newest->pidNext = server;
  } else {
    list.oldest = server;
  }
  list.newest = server;
  // A list is erased only when empty, so the pointer stays valid while the exchange is in it.
  server->pidList = &list;
  server->listed = true;
}

void AttemptMatcher::Unregister(Exchange* server) {
  if (!server->listed) return;
  List& list = *static_cast<List*>(server->pidList);
  if (server->pidPrev != nullptr) {
    server->pidPrev->pidNext = server->pidNext;
  } else {
    list.oldest = server->pidNext;
  }
  if (server->pidNext != nullptr) {
    server->pidNext->pidPrev = server->pidPrev;
  } else {
    list.newest = server->pidPrev;
  }
  // A worker's list empties after nearly every request: it stays for the next one, and the
  // lists of workers gone are swept only when there are many (`list` may go with them).
  const bool empty = list.oldest == nullptr;
  server->pidPrev = server->pidNext = nullptr;
  server->pidList = nullptr;
  server->listed = false;
  if (empty && byPid_.size() > kMaxIdleWorkerLists) SweepEmpty();
}

void AttemptMatcher::SweepEmpty() {
  for (auto it = byPid_.begin(); it != byPid_.end();) {
    if (it->second.oldest == nullptr) {
      it = byPid_.erase(it);
    } else {
      ++it;
    }
  }
}

Exchange* AttemptMatcher::Match(const Exchange& client, const IncomingContext& ctx, View requestId,
                                View kongRequestId) const {
  auto it = byPid_.find(client.f.pid);
  if (it == byPid_.end()) return nullptr;
  const Bytes clientPath = Of(client, client.path);
  Exchange* best = nullptr;
  double bestScore = -1e300;
  int seen = 0;
  for (Exchange* server = it->second.newest; server != nullptr && seen < kMaxCandidates;
       server = server->pidPrev, seen++) {
    if (server->f.start_ns > client.f.start_ns) continue;
    double score = 0;
    if (ctx.hasTrace && std::memcmp(ctx.traceId, server->ids.traceId, 16) == 0) score += 16;
    if (SameView(requestId, *server, server->requestId)) score += 16;
    if (SameView(kongRequestId, *server, server->kongRequestId)) score += 16;
    const Bytes serverPath = Of(*server, server->path);
    const bool samePath = clientPath.n == serverPath.n &&
                          (clientPath.n == 0 || std::memcmp(clientPath.p, serverPath.p, clientPath.n) == 0);
    if (samePath) {
      score += 4;
    } else if (IsSuffix(clientPath, serverPath)) {
      score += 2;
    } else {
      score += SharedTail(clientPath, serverPath);
    }
    if (client.query.present && Same(client, client.query, *server, server->query)) score += 2;
    if (SameMethod(client, *server)) score += 1;
    if (Same(client, client.userAgent, *server, server->userAgent)) score += 1;
    if (server->f.attempts == 0) {
      score += 1;
    } else if (server->lastAttemptOpen) {
      score -= 8;  // one attempt at a time
    } else if (server->lastAttemptError == KW_ERR_NONE && server->lastAttemptStatus > 0 &&
               server->lastAttemptStatus < 500) {
      score -= 4;
    }
    // Ties go to the request read most recently: newest first, and `>` keeps it.
    if (score > bestScore ||
        (score == bestScore && best != nullptr && server->f.request_end_ns > best->f.request_end_ns)) {
      best = server;
      bestScore = score;
    }
  }
  return bestScore >= kMinScore ? best : nullptr;
}

void AttemptMatcher::Link(Exchange* client, Exchange* server, const IncomingContext& ctx, IdSource& ids) {
  client->parent = server;
  client->f.parent_id = server->f.id;
  client->f.attempt = server->f.attempts;
  if (server->f.attempts == 0) server->f.upstream_start_ns = client->f.start_ns;
  if (server->f.attempts < 0xffff) server->f.attempts++;
  server->lastAttemptOpen = true;
  server->live.push_back(client);
  ClientIds(&server->ids, ctx, ids, &client->ids);
  // Two attempts cannot share a span: a propagated id reused by a retry gets a fresh one.
  uint64_t span;
  std::memcpy(&span, client->ids.spanId, 8);
  for (uint64_t taken : server->attemptSpans) {
    if (taken == span) {
      ids.SpanId(client->ids.spanId);
      std::memcpy(&span, client->ids.spanId, 8);
      break;
    }
  }
  if (server->attemptSpans.size() < kMaxAttemptSpans) server->attemptSpans.push_back(span);
  if (server->traceState.present) {
    client->traceState = client->Put(server->Bytes(server->traceState), server->traceState.len, KW_MAX_TRACE_STATE);
  }
}

}  // namespace kw
