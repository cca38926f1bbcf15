// Frames from the assembler -> batches -> the JS onBatch callback, one ThreadSafeFunction call
// per batch. Frames are gathered in one reusable staging buffer on the drain thread; a flush
// copies them into an allocation of exactly the batch's size, which JS owns from then on, so a
// small batch never pins a large buffer. At most kMaxPendingBatches wait for JS: beyond that the
// drain thread stops consuming and the ring buffer is the queue (the kernel counts what it loses).
#pragma once

#include <napi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "assembler/assembler.h"

namespace kw {

class LogSink;

class BatchSink : public FrameSink {
 public:
  static constexpr size_t kMaxBatchBytes = 1 << 20;
  static constexpr uint32_t kMaxPendingBatches = 16;

  // Returns null (and an error message) when the staging buffer cannot be allocated.
  static BatchSink* Create(Napi::Env env, Napi::Function onBatch, LogSink* log, std::string* error);
  ~BatchSink() override;
  BatchSink(const BatchSink&) = delete;
  BatchSink& operator=(const BatchSink&) = delete;

  // Drain thread.
  void Frame(const uint8_t* data, size_t size) override;
  void Flush();
  // Any thread: JS is behind.
  bool Backlogged() const;
  uint64_t Batches() const;
  // JS thread, once the drain thread is joined: `done` (may be empty) runs after the last batch
  // has reached onBatch; then the callback is released.
  void Close(Napi::Function done);

 private:
  struct Shared;
  struct Item;
  static void CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Item* item);
  BatchSink(LogSink* log) : log_(log) {}
  void Deliver(Item* item);

  Napi::TypedThreadSafeFunction<std::nullptr_t, Item, CallJs> tsfn_;
  std::shared_ptr<Shared> shared_;
  LogSink* log_;
  uint8_t* staging_ = nullptr;
  size_t stagingCap_ = 0;
  size_t stagingLen_ = 0;
  uint32_t stagingFrames_ = 0;
  uint64_t dropped_ = 0;
  bool closed_ = false;
};

}  // namespace kw
