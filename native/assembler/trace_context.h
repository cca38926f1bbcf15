// Trace identity of exchanges, as src/requests/trace-context.ts decided it: continue the caller's
// W3C or B3 context when a request carries one, otherwise start a new trace; every exchange gets
// a span id of its own. Precedence: traceparent (with tracestate), then b3, then x-b3-*.
#pragma once

#include <cstdint>

#include "head_parser.h"
#include "id_source.h"

namespace kw {

// A caller's context read from request headers.
struct IncomingContext {
  bool any = false;       // something was stated (possibly only a sampling decision)
  bool hasTrace = false;  // traceId and spanId are valid
  uint8_t traceId[16];
  uint8_t spanId[8];
  int8_t sampled = -1;    // -1: no decision stated
  View traceState;        // W3C only: trimmed, non-empty, <= KW_MAX_TRACE_STATE
};

bool ParseTraceparent(View v, IncomingContext* out);
bool ParseB3Single(View v, IncomingContext* out);
bool ParseB3Multi(const HeaderValues& h, IncomingContext* out);
void ReadIncomingContext(const HeaderValues& h, IncomingContext* out);

struct TraceIds {
  uint8_t traceId[16];
  uint8_t spanId[8];
  uint8_t parentSpanId[8];
  bool hasParent = false;
  bool sampled = true;
  bool sampledStated = false;  // the caller stated the decision
  bool remoteParent = false;   // traceId and parentSpanId came from the caller
};

// Ids of an inbound (SERVER) exchange.
void ServerIds(const IncomingContext& ctx, IdSource& ids, TraceIds* out);
// Ids of an upstream (CLIENT) exchange. With a parent: its trace, the parent's span as parent;
// a span id Kong propagated in the same trace becomes this one's, and a parent that started its
// own trace adopts the trace id Kong propagated (so the call tree is one trace).
void ClientIds(TraceIds* parent, const IncomingContext& ctx, IdSource& ids, TraceIds* out);

}  // namespace kw
