#include "args.h"

#include <cmath>

namespace kw {

static bool Fail(Napi::Env env, const std::string& message) {
  Napi::TypeError::New(env, message).ThrowAsJavaScriptException();
  return false;
}

bool ArgCount(const Napi::CallbackInfo& info, size_t min, const char* method) {
  if (info.Length() >= min) return true;
  return Fail(info.Env(), std::string(method) + " expects " + std::to_string(min) + " argument(s), got " +
                              std::to_string(info.Length()));
}

bool ReadUint(Napi::Env env, Napi::Value value, const char* name, uint64_t min, uint64_t max, uint64_t* out) {
  if (!value.IsNumber()) return Fail(env, std::string(name) + " must be a number");
  double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d != std::floor(d) || d < static_cast<double>(min) || d > static_cast<double>(max)) {
    return Fail(env, std::string(name) + " must be an integer in [" + std::to_string(min) + ", " +
                         std::to_string(max) + "], got " + value.ToString().Utf8Value());
  }
  *out = static_cast<uint64_t>(d);
  return true;
}

bool ReadOptionalUint(Napi::Env env, Napi::Object obj, const char* key, uint64_t min, uint64_t max, uint64_t* out) {
  Napi::Value value = obj.Get(key);
  if (value.IsUndefined()) return true;
  return ReadUint(env, value, key, min, max, out);
}

bool ReadString(Napi::Env env, Napi::Value value, const char* name, std::string* out) {
  if (!value.IsString()) return Fail(env, std::string(name) + " must be a string");
  *out = value.As<Napi::String>().Utf8Value();
  if (out->empty()) return Fail(env, std::string(name) + " must not be empty");
  return true;
}

bool ReadShortString(Napi::Env env, Napi::Value value, const char* name, size_t maxBytes, std::string* out) {
  if (!value.IsString()) return Fail(env, std::string(name) + " must be a string");
  *out = value.As<Napi::String>().Utf8Value();
  if (out->size() > maxBytes || out->find('\0') != std::string::npos) {
    return Fail(env, std::string(name) + " must be at most " + std::to_string(maxBytes) +
                         " bytes without NUL, got \"" + *out + "\"");
  }
  return true;
}

bool ReadFunction(Napi::Env env, Napi::Value value, const char* name, Napi::Function* out) {
  if (!value.IsFunction()) return Fail(env, std::string(name) + " must be a function");
  *out = value.As<Napi::Function>();
  return true;
}

bool ReadObject(Napi::Env env, Napi::Value value, const char* name, Napi::Object* out) {
  if (!value.IsObject()) return Fail(env, std::string(name) + " must be an object");
  *out = value.As<Napi::Object>();
  return true;
}

bool ReadOptionalBool(Napi::Env env, Napi::Object obj, const char* key, bool* out) {
  Napi::Value value = obj.Get(key);
  if (value.IsUndefined()) {
    *out = false;
    return true;
  }
  if (!value.IsBoolean()) return Fail(env, std::string(key) + " must be a boolean");
  *out = value.As<Napi::Boolean>().Value();
  return true;
}

bool ReadOptionalPorts(Napi::Env env, Napi::Object obj, const char* key, std::vector<uint16_t>* out) {
  Napi::Value value = obj.Get(key);
  if (value.IsUndefined()) return true;
  if (!value.IsArray()) return Fail(env, std::string(key) + " must be an array of ports");
  Napi::Array array = value.As<Napi::Array>();
  std::vector<uint16_t> ports;
  for (uint32_t i = 0; i < array.Length(); i++) {
    uint64_t port;
    std::string name = std::string(key) + "[" + std::to_string(i) + "]";
    if (!ReadUint(env, array.Get(i), name.c_str(), 1, 65535, &port)) return false;
    ports.push_back(static_cast<uint16_t>(port));
  }
  *out = std::move(ports);
  return true;
}

}  // namespace kw
