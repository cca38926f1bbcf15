#include "assembler_js.h"

#include <cmath>
#include <cstring>
#include <string>

#include "args.h"
#include "stats_js.h"

namespace kw {

namespace {

constexpr size_t kFramePrefix = 4;
// Buffers kept for reuse, and the largest one kept (a burst's bigger ones are freed).
constexpr size_t kPoolBuffers = 4;
constexpr size_t kPoolMaxBytes = 4u << 20;
constexpr uint64_t kMaxSafeInteger = (1ull << 53) - 1;

bool Fail(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return false;
}

// An optional duration in ns: a number, or a bigint (nanoseconds pass 2^53 after 104 days).
bool ReadOptionalNs(Napi::Env env, Napi::Object obj, const char* key, uint64_t* out) {
  Napi::Value v = obj.Get(key);
  if (!v.IsBigInt()) return ReadOptionalUint(env, obj, key, 1, kMaxSafeInteger, out);
  bool lossless = false;
  uint64_t x = v.As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless || x == 0) return Fail(env, std::string(key) + " must be a positive 64-bit integer");
  *out = x;
  return true;
}

// AssemblerOptions from a JS object (undefined: the defaults). False after throwing a TypeError.
bool ReadAssemblerOptions(Napi::Env env, Napi::Value value, AssemblerOptions* out) {
  if (value.IsUndefined()) return true;
  if (!value.IsObject() || value.IsArray() || value.IsFunction()) return Fail(env, "options must be an object");
  Napi::Object obj = value.As<Napi::Object>();
  if (!ReadOptionalPorts(env, obj, "ignoredLocalPorts", &out->ignoredLocalPorts)) return false;
  uint64_t maxConnections = out->maxConnections;
  uint64_t maxPending = out->maxPendingPerConnection;
  if (!ReadOptionalUint(env, obj, "maxConnections", 1, UINT32_MAX, &maxConnections) ||
      !ReadOptionalUint(env, obj, "maxPendingPerConnection", 1, UINT32_MAX, &maxPending) ||
      !ReadOptionalNs(env, obj, "pendingTimeoutNs", &out->pendingTimeoutNs) ||
      !ReadOptionalNs(env, obj, "idleConnectionNs", &out->idleConnectionNs)) {
    return false;
  }
  out->maxConnections = static_cast<uint32_t>(maxConnections);
  out->maxPendingPerConnection = static_cast<uint32_t>(maxPending);
  return true;
}

}  // namespace

struct AssemblerJs::Pool {
  std::vector<std::vector<uint8_t>*> free;

  ~Pool() {
    for (std::vector<uint8_t>* v : free) delete v;
  }
  std::vector<uint8_t>* Take() {
    if (free.empty()) return new std::vector<uint8_t>();
    std::vector<uint8_t>* v = free.back();
    free.pop_back();
    return v;
  }
  void Give(std::vector<uint8_t>* v) {
    if (free.size() >= kPoolBuffers || v->capacity() > kPoolMaxBytes) {
      delete v;
      return;
    }
    v->clear();
    free.push_back(v);
  }
};

namespace {

// Owns a handed-over buffer until JS lets go of it. Finalizers run on the JS thread, like feed().
// V8 is told the size, so that it collects them (and they come back) as soon as it matters.
struct Handover {
  std::shared_ptr<AssemblerJs::Pool> pool;
  std::vector<uint8_t>* bytes;
  int64_t size;
};

void GiveBack(Napi::Env env, uint8_t*, Handover* h) {
  Napi::MemoryManagement::AdjustExternalMemory(env, -h->size);
  h->pool->Give(h->bytes);
  delete h;
}

}  // namespace

Napi::Function AssemblerJs::Define(Napi::Env env) {
  return DefineClass(env, "Assembler",
                     {
                         InstanceMethod<&AssemblerJs::Feed>("feed"),
                         InstanceMethod<&AssemblerJs::FlushIdle>("flushIdle"),
                         InstanceMethod<&AssemblerJs::FlushAll>("flushAll"),
                         InstanceMethod<&AssemblerJs::Stats>("stats"),
                     });
}

AssemblerJs::AssemblerJs(const Napi::CallbackInfo& info)
    : Napi::ObjectWrap<AssemblerJs>(info), pool_(std::make_shared<Pool>()) {
  frames_ = pool_->Take();
  AssemblerOptions options;
  if (!ReadAssemblerOptions(info.Env(), info.Length() > 0 ? info[0] : info.Env().Undefined(), &options)) return;
  assembler_.reset(new Assembler(options, this));
}

AssemblerJs::~AssemblerJs() { delete frames_; }

void AssemblerJs::Frame(const uint8_t* data, size_t size) { frames_->insert(frames_->end(), data, data + size); }

Napi::Value AssemblerJs::TakeFrames(Napi::Env env) {
  if (frames_->empty()) return Napi::Buffer<uint8_t>::New(env, 0);
  Handover* h = new Handover{pool_, frames_, static_cast<int64_t>(frames_->size())};
  frames_ = pool_->Take();
  Napi::MemoryManagement::AdjustExternalMemory(env, h->size);
  return Napi::Buffer<uint8_t>::New(env, h->bytes->data(), h->bytes->size(), GiveBack, h);
}

// records: [u32 LE size][record] ..., as the ring buffer holds them.
Napi::Value AssemblerJs::Feed(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!assembler_) return env.Undefined();
  if (info.Length() < 1 || !info[0].IsBuffer()) {
    Fail(env, "feed expects a Buffer of records framed [u32 LE size][record]");
    return env.Undefined();
  }
  Napi::Buffer<uint8_t> buf = info[0].As<Napi::Buffer<uint8_t>>();
  const uint8_t* p = buf.Data();
  const size_t end = buf.Length();
  size_t at = 0;
  while (at < end) {
    uint32_t size = 0;
    if (end - at < kFramePrefix) {
      assembler_->Record(nullptr, 0);  // counted as malformed
      break;
    }
    std::memcpy(&size, p + at, kFramePrefix);
    at += kFramePrefix;
    if (size > end - at) {
      // The size itself is suspect, so nothing after it can be framed.
      assembler_->Record(nullptr, 0);
      break;
    }
    assembler_->Record(p + at, size);
    at += size;
  }
  return TakeFrames(env);
}

bool AssemblerJs::ReadNow(const Napi::CallbackInfo& info, const char* method, uint64_t* out) {
  if (info.Length() < 1 || !info[0].IsBigInt()) {
    return Fail(info.Env(), std::string(method) + " expects nowNs as a bigint (CLOCK_MONOTONIC ns)");
  }
  bool lossless = false;
  *out = info[0].As<Napi::BigInt>().Uint64Value(&lossless);
  if (!lossless) return Fail(info.Env(), std::string(method) + ": nowNs must be a non-negative 64-bit integer");
  return true;
}

Napi::Value AssemblerJs::FlushIdle(const Napi::CallbackInfo& info) {
  uint64_t now = 0;
  if (!assembler_ || !ReadNow(info, "flushIdle", &now)) return info.Env().Undefined();
  assembler_->FlushIdle(now);
  return TakeFrames(info.Env());
}

Napi::Value AssemblerJs::FlushAll(const Napi::CallbackInfo& info) {
  uint64_t now = 0;
  if (!assembler_ || !ReadNow(info, "flushAll", &now)) return info.Env().Undefined();
  assembler_->FlushAll(now);
  return TakeFrames(info.Env());
}

Napi::Value AssemblerJs::Stats(const Napi::CallbackInfo& info) {
  if (!assembler_) return info.Env().Undefined();
  return AssemblerStatsToJs(info.Env(), assembler_->Stats());
}

}  // namespace kw
