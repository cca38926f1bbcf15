// Where the drain thread takes kernel records from: the BPF ring buffer (ring_source.h), or in
// replay mode the record buffers JS injects (replay_queue.h).
#pragma once

#include <cstddef>

namespace kw {

class RecordSource {
 public:
  // Returns false to stop consuming for this pass; the record it was given counts as consumed.
  using Visit = bool (*)(void* ctx, const void* record, size_t size);

  virtual ~RecordSource() = default;
  // Blocks until records are due, Wake() is called, or timeoutMs passes.
  virtual void Wait(int timeoutMs) = 0;
  // Hands over the records available now, in order. Returns how many, or a negative errno.
  virtual int Consume(Visit visit, void* ctx) = 0;
  // Any thread: ends the current or next Wait() at once.
  virtual void Wake() = 0;
};

}  // namespace kw
