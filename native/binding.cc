// Module entry: exports the Capture class. Arguments are checked in the JS-facing methods
// (args.h); everything behind them lives in its own class.
#include <napi.h>

#include "assembler_js.h"
#include "capture.h"

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Capture", kw::Capture::Define(env));
  exports.Set("Assembler", kw::AssemblerJs::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(kong_watcher, Init)
