#include "capture.h"

#include <unistd.h>

#include "args.h"
#include "batch_sink.h"
#include "log_sink.h"
#include "process_table.h"
#include "replay_queue.h"
#include "stats_js.h"

extern "C" {
#include "kong_watcher_events.h"
}

namespace kw {

namespace {

Napi::Value ThrowError(Napi::Env env, const std::string& message) {
  Napi::Error::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

Napi::Value ThrowTypeError(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

bool IsPowerOfTwo(uint64_t v) { return v && !(v & (v - 1)); }

void CallDone(Napi::Env env, Napi::Function fn, std::nullptr_t*, std::nullptr_t*) {
  napi_value undefined;
  if (env != nullptr && fn != nullptr && napi_get_undefined(env, &undefined) == napi_ok) {
    napi_call_function(env, undefined, fn, 0, nullptr, nullptr);  // may fail only at shutdown
  }
}

// Runs `fn` on a later turn of the event loop: a `done` given to an already finished stop()
// must not run inside the call, as it would for a stop() still in progress.
void CallSoon(Napi::Env env, Napi::Function fn) {
  using Once = Napi::TypedThreadSafeFunction<std::nullptr_t, std::nullptr_t, CallDone>;
  Once tsfn = Once::New(env, fn, "kong-watcher-done", 0, 1);
  tsfn.NonBlockingCall(nullptr);
  tsfn.Release();
}

}  // namespace

Napi::Function Capture::Define(Napi::Env env) {
  return DefineClass(env, "Capture",
                     {
                         InstanceMethod<&Capture::Start>("start"),
                         InstanceMethod<&Capture::AddProcess>("addProcess"),
                         InstanceMethod<&Capture::RemoveProcess>("removeProcess"),
                         InstanceMethod<&Capture::AttachUprobes>("attachUprobes"),
                         InstanceMethod<&Capture::DetachUprobes>("detachUprobes"),
                         InstanceMethod<&Capture::Inject>("inject"),
                         InstanceMethod<&Capture::Stats>("stats"),
                         InstanceMethod<&Capture::Stop>("stop"),
                     });
}

Capture::Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info) {
  Napi::Env env = info.Env();
  Napi::Object opts;
  if (!ArgCount(info, 1, "Capture") || !ReadObject(env, info[0], "options", &opts)) return;
  const uint64_t page = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
  uint64_t ring, capture, wakeup, poll;
  std::string dataPath;
  Napi::Function onBatch, onLog;
  AssemblerOptions& a = options_.assembler;
  uint64_t maxConnections = a.maxConnections, maxPending = a.maxPendingPerConnection;
  uint64_t pendingTimeout = a.pendingTimeoutNs, idleConnection = a.idleConnectionNs;
  constexpr uint64_t kMaxSafeInteger = (1ULL << 53) - 1;
  if (!ReadUint(env, opts.Get("ringBufferBytes"), "ringBufferBytes", page, 1ULL << 30, &ring) ||
      !ReadUint(env, opts.Get("captureBytes"), "captureBytes", 0, KW_MAX_CAPTURE, &capture) ||
      !ReadUint(env, opts.Get("wakeupBytes"), "wakeupBytes", 0, 1ULL << 30, &wakeup) ||
      !ReadUint(env, opts.Get("pollIntervalMs"), "pollIntervalMs", 1, 10000, &poll) ||
      !ReadString(env, opts.Get("dataPath"), "dataPath", &dataPath) ||
      !ReadShortString(env, opts.Get("execComm"), "execComm", KW_COMM_LEN - 1, &options_.load.execComm) ||
      !ReadOptionalBool(env, opts, "replay", &options_.replay) ||
      !ReadOptionalPorts(env, opts, "ignoredLocalPorts", &a.ignoredLocalPorts) ||
      !ReadOptionalUint(env, opts, "maxConnections", 1, UINT32_MAX, &maxConnections) ||
      !ReadOptionalUint(env, opts, "maxPendingPerConnection", 1, UINT32_MAX, &maxPending) ||
      !ReadOptionalUint(env, opts, "pendingTimeoutNs", 1, kMaxSafeInteger, &pendingTimeout) ||
      !ReadOptionalUint(env, opts, "idleConnectionNs", 1, kMaxSafeInteger, &idleConnection) ||
      !ReadFunction(env, opts.Get("onBatch"), "onBatch", &onBatch) ||
      !ReadFunction(env, opts.Get("onLog"), "onLog", &onLog)) {
    return;
  }
  if (!IsPowerOfTwo(ring) || ring % page) {
    ThrowTypeError(env, "ringBufferBytes must be a power of two and a multiple of the page size (" +
                            std::to_string(page) + "), got " + std::to_string(ring));
    return;
  }
  if (dataPath != "syscalls" && dataPath != "libc") {
    ThrowTypeError(env, "dataPath must be 'syscalls' or 'libc', got '" + dataPath + "'");
    return;
  }
  options_.load.ringBufferBytes = static_cast<uint32_t>(ring);
  options_.load.captureBytes = static_cast<uint32_t>(capture);
  options_.load.wakeupBytes = wakeup;
  options_.load.libcDataPath = dataPath == "libc";
  options_.pollMs = static_cast<int>(poll);
  a.maxConnections = static_cast<uint32_t>(maxConnections);
  a.maxPendingPerConnection = static_cast<uint32_t>(maxPending);
  a.pendingTimeoutNs = pendingTimeout;
  a.idleConnectionNs = idleConnection;
  onBatch_ = Napi::Persistent(onBatch);
  onLog_ = Napi::Persistent(onLog);
  valid_ = true;
}

Capture::~Capture() { Shutdown(Napi::Function()); }

Napi::Value Capture::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!valid_) return ThrowError(env, "capture was not constructed");
  if (stopped_) return ThrowError(env, "capture was stopped; create a new one");
  if (started_) return ThrowError(env, "capture already started");
  log_.reset(new LogSink(env, onLog_.Value()));
  if (!options_.replay) log_->RouteLibbpf();
  std::string err;
  sink_.reset(BatchSink::Create(env, onBatch_.Value(), log_.get(), &err));
  if (sink_) {
    session_.reset(new Session(options_, log_.get(), sink_.get()));
    err = session_->Start();
  }
  if (!err.empty()) {
    session_.reset();
    if (sink_) sink_->Close(Napi::Function());
    sink_.reset();
    log_.reset();
    return ThrowError(env, err);
  }
  started_ = true;
  return env.Undefined();
}

bool Capture::Running(Napi::Env env, const char* method, bool needsKernel) {
  if (!started_ || stopped_) {
    ThrowError(env, std::string(method) + ": " + (stopped_ ? "capture was stopped" : "call start() first"));
    return false;
  }
  if (needsKernel && session_->replay()) {
    ThrowError(env, std::string(method) + ": a replay capture has no kernel side");
    return false;
  }
  return true;
}

Napi::Value Capture::AddProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t pid;
  if (!ArgCount(info, 1, "addProcess") || !ReadUint(env, info[0], "pid", 1, ProcessTable::kMaxPid, &pid) ||
      !Running(env, "addProcess", true)) {
    return env.Undefined();
  }
  session_->AddProcess(static_cast<uint32_t>(pid));
  return env.Undefined();
}

Napi::Value Capture::RemoveProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t pid;
  if (!ArgCount(info, 1, "removeProcess") || !ReadUint(env, info[0], "pid", 1, ProcessTable::kMaxPid, &pid) ||
      !Running(env, "removeProcess", true)) {
    return env.Undefined();
  }
  session_->RemoveProcess(static_cast<uint32_t>(pid));
  return env.Undefined();
}

Napi::Value Capture::AttachUprobes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t pid;
  Napi::Object set;
  UprobeRequest req;
  if (!ArgCount(info, 3, "attachUprobes") || !ReadUint(env, info[0], "pid", 1, ProcessTable::kMaxPid, &pid) ||
      !ReadString(env, info[1], "binaryPath", &req.binaryPath) || !ReadObject(env, info[2], "set", &set) ||
      !ReadOptionalBool(env, set, "lua", &req.lua) || !ReadOptionalBool(env, set, "libc", &req.libc) ||
      !ReadOptionalBool(env, set, "tls", &req.tls) || !ReadOptionalBool(env, set, "tlsOpenSsl", &req.tlsOpenSsl)) {
    return env.Undefined();
  }
  if (info.Length() > 3 && !info[3].IsUndefined() && !ReadString(env, info[3], "libcPath", &req.libcPath)) {
    return env.Undefined();
  }
  if (info.Length() > 4 && !info[4].IsUndefined() && !ReadString(env, info[4], "sslPath", &req.sslPath)) {
    return env.Undefined();
  }
  if (!Running(env, "attachUprobes", true)) return env.Undefined();
  req.pid = static_cast<int>(pid);
  UprobeResult result = session_->AttachUprobes(req);
  if (!result.error.empty()) return ThrowError(env, result.error);
  Napi::Object out = Napi::Object::New(env);
  Napi::Array attached = Napi::Array::New(env, result.attached.size());
  for (size_t i = 0; i < result.attached.size(); i++) attached.Set(static_cast<uint32_t>(i), result.attached[i]);
  Napi::Array missing = Napi::Array::New(env, result.missing.size());
  for (size_t i = 0; i < result.missing.size(); i++) missing.Set(static_cast<uint32_t>(i), result.missing[i]);
  out.Set("attached", attached);
  out.Set("missing", missing);
  return out;
}

Napi::Value Capture::DetachUprobes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t pid;
  if (!ArgCount(info, 1, "detachUprobes") || !ReadUint(env, info[0], "pid", 1, ProcessTable::kMaxPid, &pid)) {
    return env.Undefined();
  }
  if (session_ && !stopped_) session_->DetachUprobes(static_cast<int>(pid));
  return env.Undefined();
}

Napi::Value Capture::Inject(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!ArgCount(info, 1, "inject")) return env.Undefined();
  if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    return ThrowTypeError(env, "records must be a Buffer (or Uint8Array)");
  }
  Napi::Uint8Array records = info[0].As<Napi::Uint8Array>();
  std::string framing = ReplayQueue::CheckFraming(records.Data(), records.ByteLength());
  if (!framing.empty()) return ThrowTypeError(env, "records must be framed [u32 LE size][record]: " + framing);
  if (!Running(env, "inject", false)) return env.Undefined();
  if (!session_->replay()) return ThrowError(env, "inject: only a replay capture (replay: true) takes records");
  session_->Inject(records.Data(), records.ByteLength());
  return env.Undefined();
}

Napi::Value Capture::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!started_) return ThrowError(env, "stats: call start() first");
  CaptureTotals t = session_->Totals();
  Napi::Object out = Napi::Object::New(env);
  out.Set("events", static_cast<double>(t.kernel[KW_STAT_EVENTS]));
  out.Set("lost", static_cast<double>(t.kernel[KW_STAT_LOST]));
  out.Set("connOpened", static_cast<double>(t.kernel[KW_STAT_CONN_OPENED]));
  out.Set("connClosed", static_cast<double>(t.kernel[KW_STAT_CONN_CLOSED]));
  out.Set("connMapFull", static_cast<double>(t.kernel[KW_STAT_CONN_MAP_FULL]));
  out.Set("forksFollowed", static_cast<double>(t.kernel[KW_STAT_FORKS_FOLLOWED]));
  out.Set("tlsUnlinked", static_cast<double>(t.kernel[KW_STAT_TLS_UNLINKED]));
  out.Set("batches", static_cast<double>(sink_->Batches()));
  out.Set("ringUsedBytes", static_cast<double>(t.ringUsedBytes));
  out.Set("ringSizeBytes", static_cast<double>(options_.replay ? 0 : options_.load.ringBufferBytes));
  out.Set("assembler", AssemblerStatsToJs(env, t.assembler));
  return out;
}

Napi::Value Capture::Stop(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Function done;
  if (info.Length() > 0 && !info[0].IsUndefined() && !ReadFunction(env, info[0], "done", &done)) {
    return env.Undefined();
  }
  if (stopped_ || !started_) {
    stopped_ = true;
    if (!done.IsEmpty()) CallSoon(env, done);
    return env.Undefined();
  }
  Shutdown(done);
  return env.Undefined();
}

// Order matters: the session's last pass queues the last batch, then `done` is queued behind it
// on the same ThreadSafeFunction, then the callbacks are released.
void Capture::Shutdown(Napi::Function done) {
  if (stopped_) return;
  stopped_ = true;
  if (session_) session_->Stop();
  if (sink_) sink_->Close(done);
  log_.reset();
}

}  // namespace kw
