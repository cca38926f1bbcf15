// One followed socket: which side of it is the request stream, the requests waiting for their
// answer, FIFO pairing of responses with them (keep-alive, pipelining), timing, and what happens
// when a peer goes away mid-exchange (the exchange is still reported, with nginx's status and an
// error code, or dropped when nginx never served it).
//
// SERVER connections (Kong serves a client): the response is the truth of what nginx served. A
// request candidate is made at the first byte of every request message, parsed or not; every
// final response pairs with the oldest candidate without one.
// CLIENT connections (Kong calls an upstream): candidates are the request heads Kong writes, and
// each is matched to the inbound request it serves.
#pragma once

#include <cstdint>

#include "candidate_queue.h"
#include "context.h"
#include "message_framer.h"
#include "record_reader.h"

namespace kw {

// Why a connection's unfinished exchanges are finished.
enum class EndCause : uint8_t { Closed, Reopened, Evicted, Timeout, AgentStopped, ProcessExited };

class Connection : public FramerOwner {
 public:
  void Init(Context* ctx, uint64_t connId, uint32_t pid, uint64_t nowNs);
  void Open(const OpenRecord& rec);
  void Data(const DataRecord& rec);
  void Lua(uint8_t phase, uint64_t ns);
  // Reports (or drops) whatever is unfinished; the connection is forgotten after it.
  void End(EndCause cause, uint64_t nowNs, uint8_t peerState);
  // Pooled: memory back, nothing reported.
  void Release();

  bool HasPending() const { return !queue_.Empty(); }

  uint64_t connId = 0;
  uint32_t pid = 0;
  uint64_t lastNs = 0;
  // least-recently-used order, and the connection table's slot
  Connection* older = nullptr;
  Connection* newer = nullptr;

  // FramerOwner
  bool OnRequestStart(const uint8_t* b, size_t n, uint64_t timeNs) override;
  Framing OnRequestHead(const RequestHead& head, uint64_t headSize, bool truncated, uint64_t firstNs,
                      uint64_t nowNs) override;
  Framing OnResponseHead(const ResponseHead& head, uint64_t headSize, uint64_t firstNs, uint64_t nowNs) override;
  bool OnBareResponse(uint64_t nowNs) override;
  void OnEnd(Side side, uint64_t lastNs, uint64_t bodySize) override;
  void OnBreak(Side side, Broken why, const uint8_t* partial, size_t n, uint64_t nowNs) override;

 private:
  void SetDirection(uint8_t direction);
  bool GuessDirection(const DataRecord& rec);
  void Ignore();
  void NotHttp(uint64_t nowNs);
  void NotHttp1();
  void Upgrade(uint64_t nowNs);
  void Fail(uint8_t error, uint64_t nowNs);

  Exchange* NewExchange(uint8_t type, uint64_t startNs);
  uint64_t NewCandidate(uint64_t startNs, bool placeholder);
  void FillRequest(Exchange* ex, const RequestHead& head, uint64_t headSize, bool truncated, bool listed);
  void FillPartial(Candidate* c, const uint8_t* b, size_t n);
  void EnsureDetails(Candidate* c, uint64_t seq);
  void SetActive(Exchange* ex);
  void ClearActive(Exchange* ex);
  void MergePlaceholder(uint64_t seq);

  Candidate* Live(uint64_t seq);
  Candidate* OldestUnanswered(uint64_t* seq);
  // A final response (or HTTP/0.9's bare body) answers this candidate; false for placeholders.
  bool Answer(uint64_t seq, Candidate* c);
  void Complete(uint64_t seq, uint64_t endNs, uint8_t error);
  void Drop(uint64_t seq, bool counted = true);
  void DropAfter(uint64_t seq);

  Context* ctx_ = nullptr;
  uint8_t dir_ = 0;  // enum kw_direction
  bool ignored_ = false;
  bool tls_ = false;
  bool closing_ = false;       // SERVER: a response said nothing later on this connection is a request
  bool suspect_ = false;       // SERVER: the first bytes looked like TLS or HTTP/2; the answer decides
  bool everRequest_ = false;   // a request message was seen (CLIENT: else the bytes are not HTTP)
  bool hasEndpoint_ = false;
  uint8_t family_ = 0;
  uint16_t localPort_ = 0;
  uint16_t peerPort_ = 0;
  uint8_t localAddr_[16] = {};
  uint8_t peerAddr_[16] = {};

  MessageFramer request_;
  MessageFramer response_;
  CandidateQueue queue_;
  uint64_t reqSeq_ = CandidateQueue::kNone;   // the candidate whose request is being read
  uint64_t respSeq_ = CandidateQueue::kNone;  // the candidate whose response is being read
  uint32_t detailed_ = 0;                     // candidates with details (bounded)
  uint32_t requestCount_ = 0;
  uint8_t failure_ = 0;  // why the peer is gone, first reason wins
  uint64_t failureNs_ = 0;
};

}  // namespace kw
