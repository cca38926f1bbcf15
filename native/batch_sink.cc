#include "batch_sink.h"

#include <cstring>
#include <new>

#include "log_sink.h"

namespace kw {

BatchSink::BatchSink(Napi::Env env, Napi::Function onBatch, LogSink* log)
    : counters_(std::make_shared<Counters>()), log_(log) {
  // Unbounded queue so BlockingCall never blocks the drain thread against a JS thread that
  // is joining it; Backlogged() bounds the queue instead.
  tsfn_ = Napi::TypedThreadSafeFunction<std::nullptr_t, Batch, CallJs>::New(env, onBatch, "kong-watcher-batch", 0, 1);
}

BatchSink::~BatchSink() { tsfn_.Release(); }

bool BatchSink::Append(const void* data, size_t size) {
  if (!current_) {
    current_.reset(new (std::nothrow) Batch());
    if (!current_) return false;
    current_->counters = counters_;
    current_->bytes.reserve(64 * 1024);
  }
  std::vector<uint8_t>& bytes = current_->bytes;
  size_t at = bytes.size();
  uint32_t frame = static_cast<uint32_t>(size);
  uint8_t le[4] = {static_cast<uint8_t>(frame), static_cast<uint8_t>(frame >> 8), static_cast<uint8_t>(frame >> 16),
                   static_cast<uint8_t>(frame >> 24)};
  bytes.resize(at + 4 + size);
  std::memcpy(bytes.data() + at, le, 4);
  std::memcpy(bytes.data() + at + 4, data, size);
  current_->count++;
  return true;
}

bool BatchSink::Full() const { return current_ && current_->bytes.size() >= kMaxBatchBytes; }

void BatchSink::Flush() {
  if (!current_ || current_->count == 0) return;
  Batch* batch = current_.release();
  counters_->pending++;
  napi_status status = tsfn_.BlockingCall(batch);
  if (status != napi_ok) {
    counters_->pending--;
    delete batch;
    if (log_) log_->Log(LogLevel::kWarn, "dropped a batch: the JS callback is closing (status " +
                                             std::to_string(static_cast<int>(status)) + ")");
  }
}

bool BatchSink::Backlogged() const { return counters_->pending.load() >= kMaxPendingBatches; }

uint64_t BatchSink::Batches() const { return counters_->delivered.load(); }

void BatchSink::CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Batch* batch) {
  batch->counters->pending--;
  if (env == nullptr || fn == nullptr) {
    delete batch;
    return;
  }
  batch->counters->delivered++;
  uint32_t count = batch->count;
  Napi::Buffer<uint8_t> buffer = Napi::Buffer<uint8_t>::New(
      env, batch->bytes.data(), batch->bytes.size(), [](Napi::Env, uint8_t*, Batch* owner) { delete owner; }, batch);
  fn.Call({buffer, Napi::Number::New(env, count)});
}

}  // namespace kw
