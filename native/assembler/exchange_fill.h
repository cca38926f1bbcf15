// What an exchange takes from a parsed head: the request's method, version, target and kept
// headers, the response's status, flags and Kong's latency headers. Strings are kept in the
// order of the frame's (method text, path, query, host, user agent; then trace state and content
// type), so that the frame writer copies them at once.
#pragma once

#include <cstdint>

#include "exchange.h"
#include "head_parser.h"

namespace kw {

// The request line and the kept headers up to the user agent.
void TakeRequestHead(Exchange* ex, const RequestHead& head, uint64_t headSize, bool truncated);
// The strings that follow the trace state: content type, and for a SERVER exchange in flight the
// request ids its upstream attempts are matched against.
void TakeRequestTail(Exchange* ex, const RequestHead& head);
void TakeResponseHead(Exchange* ex, const ResponseHead& head, uint64_t headSize, uint64_t firstNs);

}  // namespace kw
