// Incremental HTTP/1.x message framing over one direction of a connection, from what the kernel
// copies per read/write: the bytes moved, the first ones and (when known) the last ones. Bodies
// are skipped by counting, so a gap in a body costs nothing; framing that falls into bytes never
// seen makes the body "lost" until something shows where it ended. Bad input never throws: the
// stream resynchronises at the next transfer that starts with a message head.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "head_parser.h"
#include "transfer.h"

namespace kw {

struct AssemblerStats;

enum class Side : uint8_t { Request, Response };

// Why a message could not be followed; after it the stream waits for a new message head.
enum class Broken : uint8_t {
  Garbage,    // request bytes that are not a request line at all (binary): nginx answers 400
  NotHttp,    // a message start that must be HTTP/1.x is not (a status line, Kong's own request)
  LostStart,  // a message starts in bytes the kernel did not copy
  LostHead,   // a head's end lies in bytes the kernel did not copy
  BadHead,    // a response head that is not HTTP/1.x, or frames itself contradictorily
  BadChunk,   // chunked framing that is not chunked framing
};

// The owner's answer to a head: how its body is delimited, or stop following the bytes.
struct Framing {
  BodyKind kind;
  uint64_t length;
  bool stop;
};

class FramerOwner {
 public:
  virtual ~FramerOwner() = default;
  // First byte of a request (b[0, n) captured from there). False: the connection is dropped.
  virtual bool OnRequestStart(const uint8_t* b, size_t n, uint64_t timeNs) = 0;
  // A complete head (truncated: the kept bytes stop before its end, which is known).
  virtual Framing OnRequestHead(const RequestHead& head, uint64_t headSize, bool truncated, uint64_t firstNs,
                              uint64_t nowNs) = 0;
  virtual Framing OnResponseHead(const ResponseHead& head, uint64_t headSize, uint64_t firstNs, uint64_t nowNs) = 0;
  // A response that does not start with a status line: true when it is HTTP/0.9's bare body.
  virtual bool OnBareResponse(uint64_t nowNs) = 0;
  // The message's last byte was moved at lastNs; bodySize counts body bytes on the wire.
  virtual void OnEnd(Side side, uint64_t lastNs, uint64_t bodySize) = 0;
  // partial[0, n): the kept bytes of the head that was being read, when there is one.
  virtual void OnBreak(Side side, Broken why, const uint8_t* partial, size_t n, uint64_t nowNs) = 0;
};

// Shared by every framer of one assembler (it runs on one thread, and parsing never nests).
struct FramerShared {
  RequestHead request;
  ResponseHead response;
  AssemblerStats* stats = nullptr;
  uint64_t headBytesInUse = 0;  // bytes of heads kept across transfers, all connections
  uint64_t headBytesLimit = 64ull << 20;
};

// Bytes of a head kept for parsing (nginx's large_client_header_buffers hold 8 KiB per line);
// past them a head is followed by size only, and a head is never refused for its size.
constexpr size_t kMaxKeptHead = 16384;

class MessageFramer {
 public:
  void Init(Side side, bool strictRequests, FramerShared* shared, FramerOwner* owner);
  // Frees what a head kept; the framer is reusable after Init.
  void Release();

  void Feed(const Transfer& x);
  // The connection is gone: a body delimited by the close, or lost, ends at the last byte moved.
  bool Close();
  // Kong writes the next request on a connection it never pipelines: a lost body ended before.
  void EndLostBody();
  // The message being read is over without its end (nginx answered it mid-head): resync.
  void Abandon();
  void Stop();

  bool Stopped() const { return state_ == State::Stopped; }
  bool InHead() const { return state_ == State::Head; }
  // The kept bytes of a head that began in an earlier transfer.
  const uint8_t* KeptHead(size_t* n) const {
    *n = buf_.size();
    return buf_.data();
  }
  uint64_t LastNs() const { return lastNs_; }

 private:
  enum class State : uint8_t { Idle, Head, Length, Chunked, ChunkedLost, Close, Resync, Stopped };
  enum class Chunk : uint8_t { Size, Ext, Data, DataEnd, Trailer };
  enum class Scan : uint8_t { More, Complete, Garbage };

  bool StartsMessage(const Transfer& x) const;
  uint64_t StartMessage(const Transfer& x, uint64_t p);
  uint64_t ConsumeHead(const Transfer& x, uint64_t p);
  Scan ScanHead(const uint8_t* h, size_t len, size_t* end);
  bool ScanOverflow(const uint8_t* b, size_t n, size_t* end);
  uint64_t Gap(const Transfer& x, uint64_t p, const uint8_t* kept, size_t keptLen, uint64_t before);
  void Deliver(const uint8_t* h, size_t len, uint64_t headSize, bool truncated, const Transfer& x);
  void Dispatch(const uint8_t* h, size_t len, uint64_t headSize, bool truncated, const Transfer& x);
  void BeginBody(const Framing& f, uint64_t timeNs);
  uint64_t Chunked(const Transfer& x, uint64_t p);
  void SizeLineDone();
  void Finish(uint64_t timeNs);
  void Fail(Broken why, const uint8_t* partial, size_t n, const Transfer& x, uint64_t p);
  void ResetHead();
  void Keep(const uint8_t* b, size_t n, size_t* kept);
  void Remember(const Transfer& x);
  bool EndsWithTerminator() const;

  Side side_ = Side::Request;
  bool strict_ = false;
  FramerShared* shared_ = nullptr;
  FramerOwner* owner_ = nullptr;
  State state_ = State::Idle;

  // the head being read
  std::vector<uint8_t> buf_;  // its first bytes, only while it spans transfers
  bool spanning_ = false;
  bool overflow_ = false;      // past kMaxKeptHead (or the shared budget): followed by size only
  uint64_t headBytes_ = 0;     // head bytes moved so far, kept or not
  uint64_t headStartNs_ = 0;
  bool methodDone_ = false;
  size_t methodPos_ = 0;
  bool lineDone_ = false;
  size_t lineFrom_ = 0;
  size_t blankFrom_ = 0;
  uint8_t blank_ = 0;          // blank-line detector past the kept bytes: 1 after LF, 2 after LF CR

  // the body
  uint64_t remaining_ = 0;
  uint64_t bodySize_ = 0;
  Chunk chunk_ = Chunk::Size;
  uint64_t chunkSize_ = 0;
  uint32_t chunkLine_ = 0;
  bool trailerEmpty_ = true;

  // the stream's last bytes, while a lost chunked body waits for its terminator
  uint8_t recent_[16] = {};
  uint8_t recentLen_ = 0;
  uint64_t lastNs_ = 0;
};

}  // namespace kw
