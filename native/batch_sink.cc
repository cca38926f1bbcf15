#include "batch_sink.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "log_sink.h"

namespace kw {

// Outlives the sink: batches still queued when it is destroyed count themselves on delivery.
struct BatchSink::Shared {
  std::atomic<uint32_t> pending{0};
  std::atomic<uint64_t> delivered{0};
};

// A batch (bytes != null), or the marker that runs `done` behind the last batch.
struct BatchSink::Item {
  uint8_t* bytes = nullptr;
  size_t size = 0;
  uint32_t frames = 0;
  std::shared_ptr<Shared> shared;
  Napi::FunctionReference* done = nullptr;
};

namespace {

// The biggest frame: the exchange struct plus every string at its bound, rounded up.
constexpr size_t kFrameSlack = 16 << 10;

}  // namespace

BatchSink* BatchSink::Create(Napi::Env env, Napi::Function onBatch, LogSink* log, std::string* error) {
  auto* sink = new (std::nothrow) BatchSink(log);
  if (!sink) {
    *error = "out of memory for the batch sink";
    return nullptr;
  }
  sink->stagingCap_ = kMaxBatchBytes + kFrameSlack;
  sink->staging_ = static_cast<uint8_t*>(malloc(sink->stagingCap_));
  if (!sink->staging_) {
    delete sink;
    *error = "out of memory for the batch staging buffer";
    return nullptr;
  }
  sink->shared_ = std::make_shared<Shared>();
  // Unbounded queue: a call never blocks, so the JS thread can queue the `done` marker and the
  // drain thread never waits on a JS thread that is joining it. Backlogged() bounds it instead.
  sink->tsfn_ =
      Napi::TypedThreadSafeFunction<std::nullptr_t, Item, CallJs>::New(env, onBatch, "kong-watcher-batch", 0, 1);
  return sink;
}

BatchSink::~BatchSink() {
  if (!closed_ && shared_) tsfn_.Release();
  free(staging_);
}

void BatchSink::Frame(const uint8_t* data, size_t size) {
  if (stagingLen_ + size > stagingCap_) Flush();
  if (size > stagingCap_) {
    dropped_++;
    return;
  }
  std::memcpy(staging_ + stagingLen_, data, size);
  stagingLen_ += size;
  stagingFrames_++;
  if (stagingLen_ >= kMaxBatchBytes) Flush();
}

void BatchSink::Flush() {
  if (dropped_ && log_) {
    log_->Log(LogLevel::kError, "dropped " + std::to_string(dropped_) + " frame(s) larger than a batch");
    dropped_ = 0;
  }
  if (stagingFrames_ == 0) return;
  auto* item = new (std::nothrow) Item();
  uint8_t* bytes = static_cast<uint8_t*>(malloc(stagingLen_));
  if (!item || !bytes) {
    delete item;
    free(bytes);
    if (log_) log_->Log(LogLevel::kError, "out of memory: dropped a batch of " + std::to_string(stagingFrames_) + " frame(s)");
  } else {
    std::memcpy(bytes, staging_, stagingLen_);
    item->bytes = bytes;
    item->size = stagingLen_;
    item->frames = stagingFrames_;
    Deliver(item);
  }
  stagingLen_ = 0;
  stagingFrames_ = 0;
}

void BatchSink::Deliver(Item* item) {
  item->shared = shared_;
  if (item->bytes) shared_->pending++;
  napi_status status = tsfn_.BlockingCall(item);
  if (status == napi_ok) return;
  // napi_closing: the environment is going away; napi_queue_full cannot happen on an unbounded
  // queue. Either way the item never reaches JS.
  if (item->bytes) shared_->pending--;
  free(item->bytes);
  // A `done` reference can only be deleted on the JS thread: it is left to the environment.
  delete item;
  if (log_) {
    log_->Log(LogLevel::kWarn, "dropped a batch: the JS callback is closing (napi status " +
                                   std::to_string(static_cast<int>(status)) + ")");
  }
}

bool BatchSink::Backlogged() const { return shared_->pending.load() >= kMaxPendingBatches; }

uint64_t BatchSink::Batches() const { return shared_->delivered.load(); }

void BatchSink::Close(Napi::Function done) {
  if (closed_) return;
  closed_ = true;
  if (!done.IsEmpty()) {
    auto* item = new (std::nothrow) Item();
    if (item) {
      item->done = new Napi::FunctionReference(Napi::Persistent(done));
      Deliver(item);
    }
  }
  tsfn_.Release();
}

// Plain N-API with its status ignored: while the environment shuts down, JS cannot run any
// more, and node-addon-api would turn that refusal into a fatal error.
void BatchSink::CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Item* item) {
  std::shared_ptr<Shared> shared = item->shared;
  if (item->bytes) shared->pending--;
  napi_value undefined;
  if (env == nullptr || fn == nullptr || napi_get_undefined(env, &undefined) != napi_ok) {
    free(item->bytes);
    delete item;
    return;
  }
  if (item->done) {
    Napi::FunctionReference* done = item->done;
    delete item;
    napi_call_function(env, undefined, done->Value(), 0, nullptr, nullptr);
    delete done;
    return;
  }
  uint8_t* bytes = item->bytes;
  size_t size = item->size;
  uint32_t frames = item->frames;
  delete item;
  napi_value args[2];
  if (napi_create_external_buffer(
          env, size, bytes, [](napi_env, void* data, void*) { free(data); }, nullptr, &args[0]) != napi_ok) {
    free(bytes);
    return;
  }
  if (napi_create_uint32(env, frames, &args[1]) != napi_ok) return;
  shared->delivered++;
  napi_call_function(env, undefined, fn, 2, args, nullptr);
}

}  // namespace kw
