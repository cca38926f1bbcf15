// Exchanges and process events -> frames laid out as native/kw_exchange.h says: the fixed struct,
// then its strings, padded to 8 bytes. One buffer, reused: a frame is valid during the sink call.
#pragma once

#include <cstdint>
#include <vector>

#include "assembler.h"

namespace kw {

struct Exchange;
struct ProcRecord;

class FrameWriter {
 public:
  FrameWriter(FrameSink* sink, AssemblerStats* stats) : sink_(sink), stats_(stats) {}
  void Write(const Exchange& ex);
  void WriteProc(const ProcRecord& proc);
  // Nothing reaches the sink from now on (the assembler is being destroyed).
  void Silence() { sink_ = nullptr; }

 private:
  FrameSink* sink_;
  AssemblerStats* stats_;
  std::vector<uint8_t> buf_;
};

}  // namespace kw
