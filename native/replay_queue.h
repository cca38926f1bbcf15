// Replay mode's record source: buffers of records framed [u32 LE size][record] (as
// src/capture/records.ts writes them), given to inject() on the JS thread and assembled on the
// drain thread. Bounded: Push() blocks while kMaxQueuedBytes wait. That cannot deadlock, because
// in replay mode the drain thread never waits for JS (JS is the producer here).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#include "record_source.h"

namespace kw {

class ReplayQueue : public RecordSource {
 public:
  static constexpr size_t kMaxQueuedBytes = 64 << 20;

  // Empty when data is a whole number of frames, else what is wrong with it.
  static std::string CheckFraming(const uint8_t* data, size_t size);
  // JS thread: copies data (already checked) and queues it.
  void Push(const uint8_t* data, size_t size);

  void Wait(int timeoutMs) override;
  int Consume(Visit visit, void* ctx) override;
  void Wake() override;

 private:
  std::mutex mutex_;
  std::condition_variable ready_;
  std::condition_variable space_;
  std::deque<std::vector<uint8_t>> queued_;
  size_t queuedBytes_ = 0;
  bool woken_ = false;
  // Drain thread only: the buffer being consumed and where in it.
  std::vector<uint8_t> current_;
  size_t offset_ = 0;
  // Records are handed over 8-byte aligned, as the ring buffer hands them.
  std::vector<uint64_t> aligned_;
};

}  // namespace kw
