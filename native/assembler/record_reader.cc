#include "record_reader.h"

#include <cstring>

namespace kw {

namespace {

constexpr size_t kDataHead = offsetof(kw_data_event, data);

kw_event_header Header(const void* data) {
  kw_event_header h;
  std::memcpy(&h, data, sizeof h);
  return h;
}

}  // namespace

uint8_t RecordType(const void* data, size_t size) {
  if (data == nullptr || size < sizeof(kw_event_header)) return 0;
  return static_cast<const uint8_t*>(data)[0];
}

bool ReadOpen(const void* data, size_t size, OpenRecord* out) {
  if (size < sizeof(kw_conn_open_event)) return false;
  std::memcpy(&out->ev, data, sizeof out->ev);
  out->pid = out->ev.hdr.pid;
  out->timeNs = out->ev.hdr.timestamp_ns;
  return true;
}

// A field of a record at any alignment.
template <typename T>
T Field(const uint8_t* record, size_t offset) {
  T v;
  std::memcpy(&v, record + offset, sizeof v);
  return v;
}

bool ReadData(const void* data, size_t size, DataRecord* out) {
  if (size < kDataHead) return false;
  const uint8_t* bytes = static_cast<const uint8_t*>(data);
  const uint64_t captured = Field<uint16_t>(bytes, offsetof(kw_data_event, captured_len));
  const uint64_t tailLen = Field<uint16_t>(bytes, offsetof(kw_data_event, tail_len));
  // The kernel sends the captured bytes after the fixed part (a sender may pad, never overrun).
  if (captured > KW_MAX_CAPTURE || tailLen > KW_TAIL_LEN || kDataHead + captured > size ||
      size > sizeof(kw_data_event)) {
    return false;
  }
  const int64_t result = Field<int64_t>(bytes, offsetof(kw_data_event, result));
  out->pid = Field<uint32_t>(bytes, offsetof(kw_event_header, pid));
  out->timeNs = Field<uint64_t>(bytes, offsetof(kw_event_header, timestamp_ns));
  out->connId = Field<uint64_t>(bytes, offsetof(kw_data_event, conn_id));
  out->result = result;
  out->op = bytes[offsetof(kw_data_event, op)];
  out->direction = bytes[offsetof(kw_data_event, direction)];
  out->flags = bytes[offsetof(kw_data_event, flags)];
  out->transfer = Transfer();
  if (result <= 0) return true;
  const uint64_t moved = static_cast<uint64_t>(result);
  if (captured > moved || tailLen > moved) return false;
  Transfer& t = out->transfer;
  t.data = bytes + kDataHead;
  t.captured = captured;
  t.result = moved;
  t.timeNs = out->timeNs;
  if (captured == moved) {
    // data[] holds the end itself.
    t.tailLen = moved < KW_TAIL_LEN ? moved : KW_TAIL_LEN;
    t.tail = t.data + (moved - t.tailLen);
  } else if (tailLen > 0 && (out->flags & KW_DATA_TAIL_UNKNOWN) == 0) {
    t.tailLen = tailLen;
    t.tail = bytes + offsetof(kw_data_event, tail);
  }
  return true;
}

bool ReadClose(const void* data, size_t size, CloseRecord* out) {
  if (size < sizeof(kw_conn_close_event)) return false;
  kw_conn_close_event ev;
  std::memcpy(&ev, data, sizeof ev);
  out->pid = ev.hdr.pid;
  out->timeNs = ev.hdr.timestamp_ns;
  out->connId = ev.conn_id;
  out->peerState = ev.peer_state;
  return true;
}

bool ReadLua(const void* data, size_t size, LuaRecord* out) {
  if (size < sizeof(kw_lua_phase_event)) return false;
  kw_lua_phase_event ev;
  std::memcpy(&ev, data, sizeof ev);
  out->pid = ev.hdr.pid;
  out->connId = ev.conn_id;
  out->startNs = ev.start_ns;
  out->endNs = ev.end_ns;
  out->phase = ev.phase;
  return true;
}

bool ReadProc(const void* data, size_t size, ProcRecord* out) {
  if (size < sizeof(kw_proc_event)) return false;
  kw_proc_event ev;
  std::memcpy(&ev, data, sizeof ev);
  kw_event_header h = Header(data);
  out->pid = h.pid;
  out->timeNs = h.timestamp_ns;
  out->ppid = ev.ppid;
  out->event = ev.event;
  std::memcpy(out->comm, ev.comm, sizeof out->comm);
  return true;
}

}  // namespace kw
