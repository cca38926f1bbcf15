// Collects ring-buffer records into batches of frames [u32 LE size][record bytes] and hands
// each batch to the JS onBatch callback with one ThreadSafeFunction call. Append/Flush run on
// the drain thread only; the memory of a batch is freed when JS drops its Buffer.
#pragma once

#include <napi.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

namespace kw {

class LogSink;

class BatchSink {
 public:
  BatchSink(Napi::Env env, Napi::Function onBatch, LogSink* log);
  ~BatchSink();
  BatchSink(const BatchSink&) = delete;
  BatchSink& operator=(const BatchSink&) = delete;

  // False when the record could not be stored (out of memory).
  bool Append(const void* data, size_t size);
  bool Full() const;
  void Flush();
  // JS is behind: the drain thread stops consuming so the kernel counts lost records instead
  // of this process growing without bound.
  bool Backlogged() const;
  uint64_t Batches() const;

  // At most 16 MiB waits for JS (64 MiB let a starved agent pass its 256 Mi limit in the
  // benchmark); beyond that the ring buffer itself is the queue.
  static constexpr size_t kMaxBatchBytes = 1 << 20;
  static constexpr uint32_t kMaxPendingBatches = 16;

 private:
  struct Counters {
    std::atomic<uint32_t> pending{0};
    std::atomic<uint64_t> delivered{0};
  };
  struct Batch {
    std::vector<uint8_t> bytes;
    uint32_t count = 0;
    std::shared_ptr<Counters> counters;
  };
  static void CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Batch* batch);

  Napi::TypedThreadSafeFunction<std::nullptr_t, Batch, CallJs> tsfn_;
  std::shared_ptr<Counters> counters_;
  std::unique_ptr<Batch> current_;
  LogSink* log_;
};

}  // namespace kw
