// Incremental HTTP/2 framing over one direction of a connection, from what the kernel copies per
// read/write (the first bytes moved, maybe the last 16). Frames span transfers freely; a frame's
// header, a header block fragment, or a SETTINGS/RST_STREAM/GOAWAY payload must be in copied bytes,
// while DATA payloads and everything else are skipped by length, seen or not. When bytes the framing
// needs were not copied, nothing after them can be placed: the direction is lost for good.
#pragma once

#include <cstddef>
#include <cstdint>

#include "h2_frame.h"
#include "message_framer.h"
#include "transfer.h"

namespace kw {

class H2FramerOwner {
 public:
  virtual ~H2FramerOwner() = default;
  // A frame header was read; the frame's first byte moved at firstNs.
  virtual void OnFrameHead(Side side, const H2FrameHead& h, uint64_t firstNs) = 0;
  // Header block bytes of the current HEADERS, PUSH_PROMISE or CONTINUATION frame (padding, priority
  // and promised stream id left out), in order.
  virtual void OnBlockFragment(Side side, const uint8_t* p, size_t n) = 0;
  // One parameter of the current SETTINGS frame.
  virtual void OnSetting(Side side, uint16_t id, uint32_t value) = 0;
  // The frame's last byte moved at nowNs. DATA: dataBytes without padding. RST_STREAM and GOAWAY:
  // `control` holds their first 8 payload bytes.
  virtual void OnFrameEnd(Side side, const H2FrameHead& h, uint64_t dataBytes, const uint8_t* control,
                          uint64_t nowNs) = 0;
  // Bytes the framing needed were not copied (or were not HTTP/2): nothing more is read on this side.
  virtual void OnFramingLost(Side side, uint64_t nowNs) = 0;
};

class H2Framer {
 public:
  // preface: the client's 24 bytes come first on this side.
  void Init(Side side, bool preface, H2FramerOwner* owner);
  void Feed(const Transfer& x);
  void Stop() { state_ = State::Stopped; }
  bool Stopped() const { return state_ == State::Stopped; }

 private:
  enum class State : uint8_t { Preface, Head, PadLength, Prefix, Content, Padding, Stopped };

  void Begin(uint64_t timeNs);
  void AfterPadLength();
  void Enter(State next, uint64_t timeNs);
  uint64_t Content(const Transfer& x, uint64_t p);
  void End(uint64_t timeNs);
  void Lose(uint64_t timeNs);

  Side side_ = Side::Request;
  H2FramerOwner* owner_ = nullptr;
  State state_ = State::Stopped;
  uint8_t prefaceGot_ = 0;

  uint8_t head_[kH2FrameHeadLen] = {};
  uint8_t headGot_ = 0;
  uint64_t headNs_ = 0;
  H2FrameHead frame_;
  uint32_t left_ = 0;     // bytes left in the current part of the frame
  uint32_t content_ = 0;  // the content part's length, known once the pad length is read
  uint32_t padLen_ = 0;
  uint64_t dataBytes_ = 0;
  uint8_t control_[8] = {};
  uint8_t controlGot_ = 0;
  uint8_t setting_[6] = {};
  uint8_t settingGot_ = 0;
};

}  // namespace kw
