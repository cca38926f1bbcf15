// HTTP/2 on the wire (RFC 9113): the connection preface, the 9-byte frame header, the frame types
// and flags the assembler reads, and the checks that tell HTTP/2 frames from other bytes.
#pragma once

#include <cstddef>
#include <cstdint>

#include "transfer.h"

namespace kw {

// What the client writes first on every HTTP/2 connection, TLS (ALPN h2) or cleartext (h2c).
constexpr char kH2Preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kH2PrefaceLen = sizeof kH2Preface - 1;
constexpr size_t kH2FrameHeadLen = 9;

enum H2FrameType : uint8_t {
  kH2Data = 0x0,
  kH2Headers = 0x1,
  kH2Priority = 0x2,
  kH2RstStream = 0x3,
  kH2Settings = 0x4,
  kH2PushPromise = 0x5,
  kH2Ping = 0x6,
  kH2Goaway = 0x7,
  kH2WindowUpdate = 0x8,
  kH2Continuation = 0x9,
};

enum H2Flag : uint8_t {
  kH2EndStream = 0x1,  // DATA, HEADERS
  kH2Ack = 0x1,        // SETTINGS, PING
  kH2EndHeaders = 0x4,  // HEADERS, PUSH_PROMISE, CONTINUATION
  kH2Padded = 0x8,      // DATA, HEADERS, PUSH_PROMISE
  kH2PriorityFlag = 0x20,  // HEADERS
};

enum H2ErrorCode : uint32_t {
  kH2NoError = 0x0,
  kH2ProtocolError = 0x1,
  kH2RefusedStream = 0x7,
  kH2Cancel = 0x8,
};

constexpr uint16_t kH2SettingsHeaderTableSize = 0x1;
// RFC 7541: a decoder's dynamic table is 4096 bytes until the peer's SETTINGS say otherwise.
constexpr uint32_t kH2DefaultTableSize = 4096;

struct H2FrameHead {
  uint32_t length = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
  uint32_t streamId = 0;
};

inline H2FrameHead ReadFrameHead(const uint8_t b[kH2FrameHeadLen]) {
  H2FrameHead h;
  h.length = static_cast<uint32_t>(b[0]) << 16 | static_cast<uint32_t>(b[1]) << 8 | b[2];
  h.type = b[3];
  h.flags = b[4];
  h.streamId = (static_cast<uint32_t>(b[5]) << 24 | static_cast<uint32_t>(b[6]) << 16 |
                static_cast<uint32_t>(b[7]) << 8 | b[8]) &
               0x7fffffffu;
  return h;
}

inline uint32_t ReadU32(const uint8_t* b) {
  return static_cast<uint32_t>(b[0]) << 24 | static_cast<uint32_t>(b[1]) << 16 | static_cast<uint32_t>(b[2]) << 8 |
         b[3];
}

// b[0, n) is the preface, or its first n bytes (n >= 4: "PRI " at least).
bool StartsWithPreface(const uint8_t* b, size_t n);
// The header of a frame a peer could send: a known type, its stream id rule, its fixed length,
// no undefined flag, a length below `maxLength`. Frames of unknown types pass (RFC 9113 5.5).
bool PlausibleFrameHead(const H2FrameHead& h, uint32_t maxLength);

// What the first frames of a transfer say, for a connection older than the agent (no preface).
struct H2Sniff {
  bool frames = false;    // the transfer is whole frames: each header valid, and they end where it ends
  bool request = false;   // a header block carries :method (the writer is the client)
  bool response = false;  // a header block carries :status (the writer is the server)
};
H2Sniff SniffFrames(const Transfer& x);

}  // namespace kw
