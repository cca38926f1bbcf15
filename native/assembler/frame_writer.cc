#include "frame_writer.h"

#include <cstring>

#include "exchange.h"
#include "record_reader.h"

namespace kw {

namespace {

size_t Len(const Str& s) { return s.present ? s.len : 0; }

}  // namespace

static_assert(sizeof(kw_exchange) % 8 == 0, "strings start 8-aligned after the struct");

void FrameWriter::Write(const Exchange& ex) {
  if (sink_ == nullptr) return;
  const Str* strings[] = {&ex.methodText, &ex.path,       &ex.query,      &ex.host,
                          &ex.userAgent,  &ex.traceState, &ex.contentType};
  constexpr size_t kStrings = sizeof strings / sizeof strings[0];
  size_t size = sizeof(kw_exchange);
  for (const Str* s : strings) size += Len(*s);
  size = (size + 7) & ~static_cast<size_t>(7);
  if (buf_.size() < size) buf_.resize(size);
  uint8_t* out = buf_.data();
  std::memcpy(out, &ex.f, sizeof(kw_exchange));
  kw_exchange* f = reinterpret_cast<kw_exchange*>(out);  // buf_ is malloc-aligned
  f->frame_size = static_cast<uint32_t>(size);
  // Ids are copied last: an inbound request adopts the trace Kong propagated upstream.
  std::memcpy(f->trace_id, ex.ids.traceId, 16);
  std::memcpy(f->span_id, ex.ids.spanId, 8);
  if (ex.ids.hasParent) {
    std::memcpy(f->parent_span_id, ex.ids.parentSpanId, 8);
    f->flags |= KW_EX_PARENT_SPAN;
  }
  if (ex.ids.remoteParent) f->flags |= KW_EX_CALLER_CONTEXT;
  if (ex.ids.sampled) f->flags |= KW_EX_SAMPLED;
  if (ex.ids.sampledStated) f->flags |= KW_EX_CALLER_SAMPLED_SET;
  kw_str* refs[kStrings] = {&f->method_text, &f->path,        &f->query,       &f->host,
                            &f->user_agent,  &f->trace_state, &f->content_type};
  // Kept in frame order one after the other (the usual case), the strings are one copy.
  size_t at = sizeof(kw_exchange);
  size_t first = 0;
  size_t expect = 0;
  bool contiguous = true;
  for (size_t i = 0; i < kStrings; i++) {
    const Str& s = *strings[i];
    if (!s.present) {
      *refs[i] = kw_str{0, 0};
      continue;
    }
    if (at == sizeof(kw_exchange)) first = expect = s.off;
    contiguous = contiguous && s.off == expect;
    expect = s.off + s.len;
    *refs[i] = kw_str{static_cast<uint32_t>(at), s.len};
    at += s.len;
  }
  if (contiguous) {
    const size_t bytes = at - sizeof(kw_exchange);
    if (bytes > 0) std::memcpy(out + sizeof(kw_exchange), ex.text.data() + first, bytes);
  } else {
    for (size_t i = 0; i < kStrings; i++) {
      const Str& s = *strings[i];
      if (s.present && s.len > 0) std::memcpy(out + refs[i]->offset, ex.Bytes(s), s.len);
    }
  }
  if (at < size) std::memset(out + at, 0, size - at);
  stats_->exchanges++;
  if (f->type == KW_FRAME_SERVER) {
    stats_->serverExchanges++;
  } else {
    stats_->clientExchanges++;
  }
  sink_->Frame(out, size);
}

void FrameWriter::WriteProc(const ProcRecord& proc) {
  if (sink_ == nullptr) return;
  kw_proc_frame f;
  std::memset(&f, 0, sizeof f);
  f.type = KW_FRAME_PROC;
  f.event = proc.event;
  f.frame_size = sizeof f;
  f.pid = proc.pid;
  f.ppid = proc.ppid;
  f.time_ns = proc.timeNs;
  std::memcpy(f.comm, proc.comm, sizeof f.comm);
  sink_->Frame(reinterpret_cast<const uint8_t*>(&f), sizeof f);
}

}  // namespace kw
