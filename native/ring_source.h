// The BPF ring buffer as a record source. Records arrive without wake-ups (BPF_RB_NO_WAKEUP);
// the kernel forces one when the ring passes the wake-up threshold. Wait() therefore sleeps for
// the poll period unless that wake-up (or Wake()) comes: it watches the ring edge-triggered, so
// records trickling in do not end the wait one by one, and each pass drains a whole batch.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "record_source.h"

struct ring_buffer;

namespace kw {

class RingSource : public RecordSource {
 public:
  ~RingSource() override;
  // Returns an empty string and the source, else what failed.
  static std::string Open(int ringFd, RingSource** out);

  void Wait(int timeoutMs) override;
  int Consume(Visit visit, void* ctx) override;
  void Wake() override;
  // Bytes written by the kernel and not yet consumed. Any thread.
  uint64_t UsedBytes() const;

 private:
  RingSource() = default;
  static int OnSample(void* ctx, void* data, size_t size);

  ring_buffer* rb_ = nullptr;
  int epollFd_ = -1;
  int wakeFd_ = -1;
  // The ring's consumer and producer pages, mapped read-only apart from libbpf's mapping.
  void* positions_ = nullptr;
  size_t positionsLen_ = 0;
  Visit visit_ = nullptr;
  void* visitCtx_ = nullptr;
};

}  // namespace kw
