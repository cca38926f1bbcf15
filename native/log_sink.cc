#include "log_sink.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>

namespace kw {

struct LogSink::Message {
  LogLevel level;
  std::string text;
};

namespace {

std::mutex g_route_mutex;
LogSink* g_route = nullptr;

int PrintToSink(enum libbpf_print_level level, const char* format, va_list args) {
  char buf[1024];
  int n = vsnprintf(buf, sizeof(buf), format, args);
  if (n <= 0) return 0;
  std::string text(buf, n < static_cast<int>(sizeof(buf)) ? static_cast<size_t>(n) : sizeof(buf) - 1);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  LogLevel mapped = level == LIBBPF_WARN ? LogLevel::kWarn : level == LIBBPF_INFO ? LogLevel::kInfo : LogLevel::kDebug;
  std::lock_guard<std::mutex> lock(g_route_mutex);
  if (g_route) g_route->Log(mapped, "libbpf: " + text);
  return n;
}

const char* LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarn:
      return "warn";
    default:
      return "error";
  }
}

}  // namespace

LogSink::LogSink(Napi::Env env, Napi::Function onLog) {
  tsfn_ = Napi::TypedThreadSafeFunction<std::nullptr_t, Message, CallJs>::New(env, onLog, "kong-watcher-log", 0, 1);
  // Logs alone must not keep the process alive.
  tsfn_.Unref(env);
}

LogSink::~LogSink() {
  {
    std::lock_guard<std::mutex> lock(g_route_mutex);
    if (g_route == this) {
      g_route = nullptr;
      libbpf_set_print(nullptr);
    }
  }
  tsfn_.Release();
}

void LogSink::RouteLibbpf() {
  std::lock_guard<std::mutex> lock(g_route_mutex);
  g_route = this;
  libbpf_set_print(PrintToSink);
}

void LogSink::Log(LogLevel level, const std::string& text) {
  auto* message = new Message{level, text};
  if (tsfn_.NonBlockingCall(message) != napi_ok) delete message;
}

void LogSink::CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Message* message) {
  if (env != nullptr && fn != nullptr) {
    fn.Call({Napi::String::New(env, LevelName(message->level)), Napi::String::New(env, message->text)});
  }
  delete message;
}

}  // namespace kw
