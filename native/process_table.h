// The processes the kernel side follows: one bit per tgid in kw_pid_bits, shared with the BPF
// programs through the mmapped .bss and changed only with atomic or/and (the kernel sets the
// bits of forked children and clears those of dead processes at the same time). Also drops what
// the kernel keeps per process (connections, calls in flight) once a process is gone, removed,
// or has exec'd: its sockets closed without close(), so nothing else would delete the entries.
#pragma once

#include <cstdint>
#include <mutex>
#include <set>
#include <vector>

extern "C" {
#include "kong_watcher_events.h"
}

namespace kw {

class ProcessTable {
 public:
  static constexpr uint32_t kMaxPid = KW_PID_WORDS * 64 - 1;

  // bits: KW_PID_WORDS words. mapFds: hash maps keyed by tgid << 32 | x.
  ProcessTable(uint64_t* bits, std::vector<int> mapFds) : bits_(bits), mapFds_(std::move(mapFds)) {}

  void Add(uint32_t pid);
  // Stops following pid and queues the purge of its entries.
  void Remove(uint32_t pid);
  bool Monitored(uint32_t pid) const;
  // Any thread.
  void QueuePurge(uint32_t pid);
  // Drain thread: deletes the entries of every queued process, one pass over each map.
  void RunPurges();

 private:
  uint64_t* bits_;
  std::vector<int> mapFds_;
  std::mutex mutex_;
  std::set<uint32_t> queued_;
};

}  // namespace kw
