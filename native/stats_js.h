// Counters as JS objects, for Capture.stats() and the Assembler class alike
// (src/capture/native.ts: AssemblerStats).
#pragma once

#include <napi.h>

#include "assembler/assembler.h"

namespace kw {

Napi::Object AssemblerStatsToJs(Napi::Env env, const AssemblerStats& s);

}  // namespace kw
