// The JS Capture object (src/capture/native.ts: NativeCapture): checks arguments (a wrong one
// throws TypeError), converts between JS and C++, and delegates to a Session. It owns the two
// JS callbacks' sinks, which outlive the session so that the last batch and `done` get out.
#pragma once

#include <napi.h>

#include <memory>

#include "session.h"

namespace kw {

class BatchSink;
class LogSink;

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Capture(const Napi::CallbackInfo& info);
  ~Capture() override;

 private:
  Napi::Value Start(const Napi::CallbackInfo& info);
  Napi::Value AddProcess(const Napi::CallbackInfo& info);
  Napi::Value RemoveProcess(const Napi::CallbackInfo& info);
  Napi::Value AttachUprobes(const Napi::CallbackInfo& info);
  Napi::Value DetachUprobes(const Napi::CallbackInfo& info);
  Napi::Value Inject(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value Stop(const Napi::CallbackInfo& info);

  // Throws (Error) and returns false unless the capture runs, and for kernel-only methods unless
  // it has a kernel side.
  bool Running(Napi::Env env, const char* method, bool needsKernel);
  void Shutdown(Napi::Function done);

  SessionOptions options_;
  Napi::FunctionReference onBatch_;
  Napi::FunctionReference onLog_;
  std::unique_ptr<LogSink> log_;
  std::unique_ptr<BatchSink> sink_;
  std::unique_ptr<Session> session_;
  bool valid_ = false;
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace kw
