#include "assembler.h"

#include <vector>

#include "conn_table.h"
#include "connection.h"
#include "context.h"
#include "record_reader.h"

namespace kw {

struct Assembler::Impl {
  Impl(const AssemblerOptions& options, FrameSink* sink) : ctx(options, sink) {}
  ~Impl();

  void Open(const OpenRecord& rec);
  void Data(const DataRecord& rec);
  void Close(const CloseRecord& rec);
  void Lua(const LuaRecord& rec);
  void Proc(const ProcRecord& rec);
  Connection* Get(uint64_t connId, uint32_t pid, uint64_t nowNs);
  void Finish(Connection* c, EndCause cause, uint64_t nowNs, uint8_t peerState);

  Context ctx;
  ConnTable table;
  std::vector<Connection*> scratch;  // connections picked for a flush, reused
};

Assembler::Impl::~Impl() {
  // Nothing is reported any more: every exchange goes back to the pool before the pools go.
  ctx.writer.Silence();
  while (Connection* c = table.Oldest()) {
    table.Remove(c);
    c->Release();
    table.Free(c);
  }
}

Connection* Assembler::Impl::Get(uint64_t connId, uint32_t pid, uint64_t nowNs) {
  Connection* c = table.Find(connId);
  if (c != nullptr) {
    // Most recently used goes last: eviction and idle flushes walk from the oldest.
    table.Touch(c);
    c->lastNs = nowNs;
    return c;
  }
  if (table.Size() >= ctx.options.maxConnections && table.Oldest() != nullptr) {
    ctx.stats.evicted++;
    Finish(table.Oldest(), EndCause::Evicted, nowNs, 0);
  }
  c = table.Add(connId);
  c->Init(&ctx, connId, pid, nowNs);
  return c;
}

void Assembler::Impl::Finish(Connection* c, EndCause cause, uint64_t nowNs, uint8_t peerState) {
  table.Remove(c);
  c->End(cause, nowNs, peerState);
  c->Release();
  table.Free(c);
}

void Assembler::Impl::Open(const OpenRecord& rec) {
  const uint64_t before = ctx.clock.Tick(rec.pid, rec.timeNs);
  Connection* old = table.Find(rec.ev.conn_id);
  if (old != nullptr) Finish(old, EndCause::Reopened, rec.timeNs, 0);
  Connection* c = Get(rec.ev.conn_id, rec.pid, rec.timeNs);
  c->openBeforeNs = before;
  c->Open(rec);
}

void Assembler::Impl::Data(const DataRecord& rec) {
  const uint64_t before = ctx.clock.Tick(rec.pid, rec.timeNs);
  Connection* c = Get(rec.connId, rec.pid, rec.timeNs);
  c->recordBeforeNs = before;
  c->Data(rec);
}

void Assembler::Impl::Close(const CloseRecord& rec) {
  ctx.clock.Tick(rec.pid, rec.timeNs);
  Connection* c = table.Find(rec.connId);
  if (c != nullptr) Finish(c, EndCause::Closed, rec.timeNs, rec.peerState);
}

void Assembler::Impl::Lua(const LuaRecord& rec) {
  Connection* c = table.Find(rec.connId);
  if (c != nullptr) c->Lua(rec.phase, rec.endNs > rec.startNs ? rec.endNs - rec.startNs : 0);
}

void Assembler::Impl::Proc(const ProcRecord& rec) {
  if (rec.event == KW_PROC_EXIT) {
    ctx.stats.processExits++;
    // The worker's sockets are gone without close(): its exchanges end here, all at once, and
    // are written before the exit itself.
    scratch.clear();
    for (Connection* c = table.Oldest(); c != nullptr; c = c->newer) {
      if (c->pid == rec.pid) scratch.push_back(c);
    }
    for (Connection* c : scratch) Finish(c, EndCause::ProcessExited, rec.timeNs, 0);
    scratch.clear();
  }
  ctx.writer.WriteProc(rec);
}

Assembler::Assembler(const AssemblerOptions& options, FrameSink* sink) : impl_(new Impl(options, sink)) {}

Assembler::~Assembler() = default;

void Assembler::Record(const void* data, size_t size) {
  AssemblerStats& stats = impl_->ctx.stats;
  stats.records++;
  switch (RecordType(data, size)) {
    case KW_EVENT_DATA: {
      DataRecord rec;
      if (!ReadData(data, size, &rec)) break;
      impl_->Data(rec);
      return;
    }
    case KW_EVENT_CONN_OPEN: {
      OpenRecord rec;
      if (!ReadOpen(data, size, &rec)) break;
      impl_->Open(rec);
      return;
    }
    case KW_EVENT_CONN_CLOSE: {
      CloseRecord rec;
      if (!ReadClose(data, size, &rec)) break;
      impl_->Close(rec);
      return;
    }
    case KW_EVENT_LUA_PHASE: {
      LuaRecord rec;
      if (!ReadLua(data, size, &rec)) break;
      impl_->Lua(rec);
      return;
    }
    case KW_EVENT_PROC: {
      ProcRecord rec;
      if (!ReadProc(data, size, &rec)) break;
      impl_->Proc(rec);
      return;
    }
    default:
      break;
  }
  stats.malformedRecords++;
}

void Assembler::FlushIdle(uint64_t nowNs) {
  const AssemblerOptions& o = impl_->ctx.options;
  const uint64_t window = o.pendingTimeoutNs < o.idleConnectionNs ? o.pendingTimeoutNs : o.idleConnectionNs;
  std::vector<Connection*>& picked = impl_->scratch;
  picked.clear();
  for (Connection* c = impl_->table.Oldest(); c != nullptr; c = c->newer) {
    // Least-recently-used order: everything after a recent one is more recent.
    if (c->lastNs > nowNs || nowNs - c->lastNs < window) break;
    picked.push_back(c);
  }
  for (Connection* c : picked) {
    const uint64_t silent = nowNs - c->lastNs;
    if (c->HasPending()) {
      if (silent >= o.pendingTimeoutNs) impl_->Finish(c, EndCause::Timeout, nowNs, 0);
    } else if (silent >= o.idleConnectionNs) {
      impl_->Finish(c, EndCause::Timeout, nowNs, 0);
    }
  }
  picked.clear();
}

void Assembler::FlushAll(uint64_t nowNs) {
  std::vector<Connection*>& picked = impl_->scratch;
  picked.clear();
  for (Connection* c = impl_->table.Oldest(); c != nullptr; c = c->newer) picked.push_back(c);
  for (Connection* c : picked) impl_->Finish(c, EndCause::AgentStopped, nowNs, 0);
  picked.clear();
}

AssemblerStats Assembler::Stats() const {
  AssemblerStats s = impl_->ctx.stats;
  s.connections = impl_->table.Size();
  return s;
}

}  // namespace kw
