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

bool ReadString(Napi::Env env, Napi::Value value, const char* name, std::string* out) {
  if (!value.IsString()) return Fail(env, std::string(name) + " must be a string");
  *out = value.As<Napi::String>().Utf8Value();
  if (out->empty()) return Fail(env, std::string(name) + " must not be empty");
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

}  // namespace kw
