#include "emitter.h"

#include <algorithm>

namespace kw {

void Emitter::Done(Exchange* ex) {
  if (ex->f.type == KW_FRAME_SERVER) {
    matcher_->Unregister(ex);
    writer_->Write(*ex);
    ReleaseServer(ex);
    return;
  }
  Exchange* server = ex->parent;
  Detach(ex);
  if (server != nullptr && server->held.size() < kMaxHeld) {
    server->held.push_back(ex);
    return;
  }
  writer_->Write(*ex);
  pool_->Put(ex);
}

void Emitter::Discard(Exchange* ex) {
  if (ex->f.type == KW_FRAME_SERVER) {
    matcher_->Unregister(ex);
    ReleaseServer(ex);
    return;
  }
  Detach(ex);
  pool_->Put(ex);
}

// The server's view of its attempts (the matching score reads the last one), and the link gone.
void Emitter::Detach(Exchange* client) {
  Exchange* server = client->parent;
  if (server == nullptr) return;
  if (client->f.attempt + 1 == server->f.attempts) {
    server->lastAttemptOpen = false;
    server->lastAttemptError = client->f.error;
    server->lastAttemptStatus = client->f.status;
  }
  if (client->f.end_ns > server->f.upstream_end_ns) server->f.upstream_end_ns = client->f.end_ns;
  auto it = std::find(server->live.begin(), server->live.end(), client);
  if (it != server->live.end()) server->live.erase(it);
  client->parent = nullptr;
}

void Emitter::ReleaseServer(Exchange* server) {
  // Attempts still in flight are written at once when they finish.
  for (Exchange* a : server->live) a->parent = nullptr;
  server->live.clear();
  for (Exchange* h : server->held) {
    writer_->Write(*h);
    pool_->Put(h);
  }
  server->held.clear();
  pool_->Put(server);
}

}  // namespace kw
