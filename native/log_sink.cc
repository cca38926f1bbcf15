#include "log_sink.h"

#include <bpf/libbpf.h>

#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <new>

namespace kw {

struct LogSink::Message {
  LogLevel level;
  std::string text;
};

namespace {

std::mutex g_route_mutex;
LogSink* g_route = nullptr;

// libbpf prints a rejected program's whole verifier log as one warning; it is for whoever
// debugs the BPF side, and the lines around it already say which program failed and why.
constexpr const char* kVerifierLogMarker = "-- BEGIN PROG LOAD LOG --";

int PrintToSink(enum libbpf_print_level level, const char* format, va_list args) {
  va_list sizing;
  va_copy(sizing, args);
  int n = vsnprintf(nullptr, 0, format, sizing);
  va_end(sizing);
  if (n <= 0) return 0;
  std::string text(static_cast<size_t>(n) + 1, '\0');
  vsnprintf(&text[0], text.size(), format, args);
  text.resize(static_cast<size_t>(n));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  LogLevel mapped = level == LIBBPF_WARN ? LogLevel::kWarn : level == LIBBPF_INFO ? LogLevel::kInfo : LogLevel::kDebug;
  if (text.find(kVerifierLogMarker) != std::string::npos) mapped = LogLevel::kDebug;
  std::lock_guard<std::mutex> lock(g_route_mutex);
  if (g_route) g_route->Log(mapped, text);
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
  auto* message = new (std::nothrow) Message{level, text};
  if (!message) return;
  // Unbounded queue: NonBlockingCall fails only once the function is closing.
  if (tsfn_.NonBlockingCall(message) != napi_ok) delete message;
}

// Plain N-API with its status ignored: while the environment shuts down, JS cannot run any
// more, and node-addon-api would turn that refusal into a fatal error.
void LogSink::CallJs(Napi::Env env, Napi::Function fn, std::nullptr_t*, Message* message) {
  napi_value args[2];
  napi_value undefined;
  if (env != nullptr && fn != nullptr && napi_get_undefined(env, &undefined) == napi_ok &&
      napi_create_string_utf8(env, LevelName(message->level), NAPI_AUTO_LENGTH, &args[0]) == napi_ok &&
      napi_create_string_utf8(env, message->text.data(), message->text.size(), &args[1]) == napi_ok) {
    napi_call_function(env, undefined, fn, 2, args, nullptr);
  }
  delete message;
}

}  // namespace kw
