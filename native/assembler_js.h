// The JS Assembler class: the native assembler driven synchronously (tests, recorded streams,
// benchmarks). Typed in src/capture/native.ts (NativeAssembler, AssemblerOptions, AssemblerStats).
#pragma once

#include <napi.h>

#include <memory>
#include <vector>

#include "assembler/assembler.h"

namespace kw {

class AssemblerJs : public Napi::ObjectWrap<AssemblerJs>, private FrameSink {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit AssemblerJs(const Napi::CallbackInfo& info);
  ~AssemblerJs() override;

 private:
  Napi::Value Feed(const Napi::CallbackInfo& info);
  Napi::Value FlushIdle(const Napi::CallbackInfo& info);
  Napi::Value FlushAll(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  bool ReadNow(const Napi::CallbackInfo& info, const char* method, uint64_t* out);
  Napi::Value TakeFrames(Napi::Env env);
  void Frame(const uint8_t* data, size_t size) override;

  std::unique_ptr<Assembler> assembler_;
  // Frames go to JS in the buffer they were written to, handed over rather than copied; the
  // buffer comes back to this pool when JS drops it, so its memory stays mapped and steady
  // feeding does not fault pages in (a fresh megabyte per batch cost more than assembling it).
 public:
  struct Pool;

 private:
  std::shared_ptr<Pool> pool_;
  std::vector<uint8_t>* frames_ = nullptr;
};

}  // namespace kw
