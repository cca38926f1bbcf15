#include "stats_js.h"

namespace kw {

Napi::Object AssemblerStatsToJs(Napi::Env env, const AssemblerStats& s) {
  Napi::Object out = Napi::Object::New(env);
  auto set = [&](const char* key, uint64_t v) { out.Set(key, static_cast<double>(v)); };
  set("records", s.records);
  set("malformedRecords", s.malformedRecords);
  set("exchanges", s.exchanges);
  set("serverExchanges", s.serverExchanges);
  set("clientExchanges", s.clientExchanges);
  set("connections", s.connections);
  set("inFlight", s.inFlight);
  set("evicted", s.evicted);
  set("ignored", s.ignored);
  set("notHttp", s.notHttp);
  set("protocolErrors", s.protocolErrors);
  set("skippedBytes", s.skippedBytes);
  set("lostHeads", s.lostHeads);
  set("orphanResponses", s.orphanResponses);
  set("droppedRequests", s.droppedRequests);
  set("unmatchedAttempts", s.unmatchedAttempts);
  set("processExits", s.processExits);
  set("http2Connections", s.http2Connections);
  set("hpackLost", s.hpackLost);
  // index = method * 2 + (TLS ? 1 : 0)
  Napi::Array active = Napi::Array::New(env, KW_METHOD_MAX * 2);
  for (uint32_t m = 0; m < KW_METHOD_MAX; m++) {
    for (uint32_t tls = 0; tls < 2; tls++) active.Set(m * 2 + tls, static_cast<double>(s.activeServer[m][tls]));
  }
  out.Set("activeServer", active);
  return out;
}

}  // namespace kw
