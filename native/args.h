// Argument checks for the JS-facing methods: a wrong argument throws a TypeError and returns
// false; callers return at once. The addon is built without C++ exceptions (node-gyp's
// -fno-exceptions, NAPI_DISABLE_CPP_EXCEPTIONS): errors are return values, and none can cross a
// thread.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

namespace kw {

bool ArgCount(const Napi::CallbackInfo& info, size_t min, const char* method);
bool ReadUint(Napi::Env env, Napi::Value value, const char* name, uint64_t min, uint64_t max, uint64_t* out);
// undefined leaves *out as it is.
bool ReadOptionalUint(Napi::Env env, Napi::Object obj, const char* key, uint64_t min, uint64_t max, uint64_t* out);
// A non-empty string.
bool ReadString(Napi::Env env, Napi::Value value, const char* name, std::string* out);
// A string of at most maxBytes UTF-8 bytes without NUL; may be empty.
bool ReadShortString(Napi::Env env, Napi::Value value, const char* name, size_t maxBytes, std::string* out);
bool ReadFunction(Napi::Env env, Napi::Value value, const char* name, Napi::Function* out);
bool ReadObject(Napi::Env env, Napi::Value value, const char* name, Napi::Object* out);
// undefined is false.
bool ReadOptionalBool(Napi::Env env, Napi::Object obj, const char* key, bool* out);
// undefined leaves *out as it is; else an array of integers in [1, 65535].
bool ReadOptionalPorts(Napi::Env env, Napi::Object obj, const char* key, std::vector<uint16_t>* out);

}  // namespace kw
