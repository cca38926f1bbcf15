#include "process_table.h"

#include <bpf/bpf.h>

#include <cstring>

namespace kw {

void ProcessTable::Add(uint32_t pid) {
  __atomic_fetch_or(&bits_[pid >> 6], 1ULL << (pid & 63), __ATOMIC_SEQ_CST);
}

void ProcessTable::Remove(uint32_t pid) {
  __atomic_fetch_and(&bits_[pid >> 6], ~(1ULL << (pid & 63)), __ATOMIC_SEQ_CST);
  QueuePurge(pid);
}

bool ProcessTable::Monitored(uint32_t pid) const {
  return pid <= kMaxPid && (__atomic_load_n(&bits_[pid >> 6], __ATOMIC_RELAXED) >> (pid & 63)) & 1;
}

void ProcessTable::QueuePurge(uint32_t pid) {
  std::lock_guard<std::mutex> lock(mutex_);
  queued_.insert(pid);
}

void ProcessTable::RunPurges() {
  std::set<uint32_t> pids;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (queued_.empty()) return;
    pids.swap(queued_);
  }
  for (int fd : mapFds_) {
    // Keys are collected first: deleting the key get_next_key stands on restarts a hash walk.
    std::vector<uint64_t> doomed;
    uint64_t key = 0, next = 0;
    const void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, &next) == 0) {
      if (pids.count(static_cast<uint32_t>(next >> 32))) doomed.push_back(next);
      key = next;
      prev = &key;
    }
    for (uint64_t k : doomed) bpf_map_delete_elem(fd, &k);
  }
}

}  // namespace kw
