// Kernel records (bpf/kong_watcher_events.h) -> plain values, every size checked first. Records
// may sit at any alignment (a JS Buffer, a ring-buffer sample), so fields are copied out, and the
// DATA payload is a pointer into the record: valid only while the caller holds it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "kong_watcher_events.h"
#include "transfer.h"

namespace kw {

struct OpenRecord {
  uint32_t pid;
  uint64_t timeNs;
  kw_conn_open_event ev;
};

struct DataRecord {
  uint32_t pid;
  uint64_t timeNs;
  uint64_t connId;
  int64_t result;
  uint8_t op;
  uint8_t direction;
  uint8_t flags;
  // Only when result > 0: the bytes moved, with the tail usable only when it is the real end.
  Transfer transfer;
};

struct CloseRecord {
  uint32_t pid;
  uint64_t timeNs;
  uint64_t connId;
  uint8_t peerState;
};

struct LuaRecord {
  uint32_t pid;
  uint64_t connId;
  uint64_t startNs;
  uint64_t endNs;
  uint8_t phase;
};

struct ProcRecord {
  uint32_t pid;
  uint64_t timeNs;
  uint32_t ppid;
  uint8_t event;
  char comm[KW_COMM_LEN];
};

// The record's type when its sizes add up, else 0 (malformed).
uint8_t RecordType(const void* data, size_t size);
bool ReadOpen(const void* data, size_t size, OpenRecord* out);
bool ReadData(const void* data, size_t size, DataRecord* out);
bool ReadClose(const void* data, size_t size, CloseRecord* out);
bool ReadLua(const void* data, size_t size, LuaRecord* out);
bool ReadProc(const void* data, size_t size, ProcRecord* out);

}  // namespace kw
