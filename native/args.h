// Argument checks for the JS-facing methods: a wrong argument throws a TypeError and returns
// false; callers return immediately. The addon is built without C++ exceptions (node-gyp's
// -fno-exceptions), so none can cross a thread.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

namespace kw {

bool ArgCount(const Napi::CallbackInfo& info, size_t min, const char* method);
bool ReadUint(Napi::Env env, Napi::Value value, const char* name, uint64_t min, uint64_t max, uint64_t* out);
bool ReadString(Napi::Env env, Napi::Value value, const char* name, std::string* out);
bool ReadFunction(Napi::Env env, Napi::Value value, const char* name, Napi::Function* out);
bool ReadObject(Napi::Env env, Napi::Value value, const char* name, Napi::Object* out);
bool ReadOptionalBool(Napi::Env env, Napi::Object obj, const char* key, bool* out);

}  // namespace kw
