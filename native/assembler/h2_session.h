// One HTTP/2 connection (TLS with ALPN h2, or cleartext h2c): each stream is one exchange, reported
// as its connection's HTTP/1 exchanges are (a SERVER stream is an in-flight inbound request the
// attempt matcher can link upstream attempts to; a CLIENT stream is one attempt, grpc_pass).
//
// Per direction: a frame reader and an HPACK decoder whose table follows that direction's header
// blocks; the table bound is the other side's SETTINGS_HEADER_TABLE_SIZE, applied when this side
// acknowledges it (its later blocks use it). A stream's timing: the first byte of the request's
// HEADERS, the last byte of the request (END_STREAM), the first byte of the final response HEADERS,
// the last byte of the response (END_STREAM). RST_STREAM and GOAWAY end streams early; a connection
// whose framing is lost finishes its streams with what is known and is not followed further.
#pragma once

#include <cstdint>
#include <vector>

#include "h2_framer.h"
#include "head_parser.h"
#include "hpack.h"
#include "kw_exchange.h"

namespace kw {

class Connection;
struct Context;
struct Exchange;

// Shared by the sessions of one assembler: the fields of the header block being decoded.
struct H2Scratch {
  RequestHead request;
  ResponseHead response;
  uint8_t path[KW_MAX_TARGET];
  uint8_t methodText[KW_MAX_METHOD_TEXT];
  const void* owner = nullptr;  // the block whose fields are held here
};

class H2Session : private H2FramerOwner, private HpackSink {
 public:
  // server: Kong serves the connection; preface: the connection's first bytes were seen (the client
  // preface comes first on the request side), so both HPACK tables can be followed from empty.
  void Start(Context* ctx, Connection* conn, bool server, bool preface);
  void Feed(const Transfer& x, bool requestSide);
  // The connection ended: streams in flight are reported with `error` at endNs; streams whose
  // request head never completed were never served.
  void End(uint8_t error, uint64_t endNs);
  // Nothing in flight is reported (the bytes were HTTP/1 after all, or the connection is dropped).
  void Discard();
  bool HasOpenStreams() const { return !streams_.empty(); }
  bool Lost() const { return lost_; }

 private:
  enum class Role : uint8_t { Ignore, RequestHead, RequestTrailers, ResponseHead, ResponseTrailers };

  struct Stream {
    uint32_t id = 0;
    Exchange* ex = nullptr;
    bool headDone = false;      // the request head block completed
    bool requestEnded = false;  // END_STREAM from the client
    bool answered = false;      // a final response head was seen
  };

  // The header block being read on one side (HEADERS or PUSH_PROMISE, then CONTINUATIONs).
  struct Block {
    bool active = false;
    Role role = Role::Ignore;
    bool endStream = false;
    uint32_t streamId = 0;
    uint64_t firstNs = 0;
    uint64_t wireSize = 0;
    // fields collected so far (the rest are in H2Scratch, or in `saved` while another block uses it)
    uint16_t status = 0;
    uint8_t method = 0;
    bool hasMethod = false;
    bool authority = false;
    bool hasPath = false;
    bool targetCut = false;
    uint16_t pathLen = 0;
    uint8_t methodTextLen = 0;
    std::vector<uint8_t> saved;
  };

  struct PendingSettings {
    bool tableSize = false;
    uint32_t value = 0;
  };

  // H2FramerOwner
  void OnFrameHead(Side side, const H2FrameHead& h, uint64_t firstNs) override;
  void OnBlockFragment(Side side, const uint8_t* p, size_t n) override;
  void OnSetting(Side side, uint16_t id, uint32_t value) override;
  void OnFrameEnd(Side side, const H2FrameHead& h, uint64_t dataBytes, const uint8_t* control,
                  uint64_t nowNs) override;
  void OnFramingLost(Side side, uint64_t nowNs) override;
  // HpackSink
  void Field(const uint8_t* name, size_t nameLen, const uint8_t* value, size_t valueLen) override;

  static int Index(Side side) { return side == Side::Request ? 0 : 1; }
  Stream* Find(uint32_t id);
  // A new stream and its exchange; nullptr (counted) over the bound or past a GOAWAY.
  Stream* Open(uint32_t id, uint64_t startNs);
  void Close(Stream* s);
  void Complete(Stream* s, uint64_t endNs, uint8_t error);
  void Drop(Stream* s, bool counted);

  void BeginBlock(Side side, const H2FrameHead& h, uint64_t firstNs);
  void EndBlock(Side side, uint64_t nowNs);
  void FinishRequestHead(Stream* s, Block& b, uint64_t nowNs);
  void FinishResponseHead(Stream* s, Block& b, uint64_t nowNs);
  void ClaimScratch(Block& b, bool fresh);
  void SaveScratch(Block& b);
  void Settings(Side side, bool ack);
  void Reset(Side side, uint32_t id, uint32_t code, uint64_t nowNs);
  void GoAway(Side side, uint32_t lastId, uint64_t nowNs);
  void ProtocolError(uint64_t nowNs);
  void Lose(uint64_t nowNs);

  Context* ctx_ = nullptr;
  Connection* conn_ = nullptr;
  bool server_ = true;
  bool lost_ = false;
  H2Framer framer_[2];
  HpackDecoder decoder_[2];  // blocks written by the request side / the response side
  Block block_[2];
  Side current_ = Side::Request;  // the side whose block the decoder is feeding
  std::vector<Stream> streams_;
  uint32_t lastRequestStream_ = 0;  // the highest stream id the request side opened
  uint32_t opened_ = 0;             // streams reported or in flight so far
  uint64_t lastOpenNs_ = 0;         // the read the last stream was opened by
  uint32_t goawayLastId_ = 0x7fffffffu;
  uint32_t settingTable_[2] = {};  // the SETTINGS frame being read: its table size, if any
  bool settingHasTable_[2] = {};
  std::vector<PendingSettings> pending_[2];  // SETTINGS sent by a side, waiting for the other's ACK
};

}  // namespace kw
