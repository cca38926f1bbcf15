// Routes libbpf's print callback and the addon's own messages to the JS onLog callback.
// Safe from any thread: messages are queued on a ThreadSafeFunction and delivered in order.
// Whose message it is shows in its text: libbpf's start with "libbpf: " (libbpf adds it), the
// addon's own never do.
#pragma once

#include <napi.h>

#include <string>

namespace kw {

enum class LogLevel { kDebug, kInfo, kWarn, kError };

class LogSink {
 public:
  LogSink(Napi::Env env, Napi::Function onLog);
  ~LogSink();
  LogSink(const LogSink&) = delete;
  LogSink& operator=(const LogSink&) = delete;

  void Log(LogLevel level, const std::string& message);
  // Makes this sink the target of libbpf's (process-global) print callback until it is destroyed.
  void RouteLibbpf();

 private:
  struct Message;
  static void CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Message* message);
  Napi::TypedThreadSafeFunction<std::nullptr_t, Message, CallJs> tsfn_;
};

}  // namespace kw
