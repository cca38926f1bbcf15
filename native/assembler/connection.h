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
// HTTP/2 (the client preface first, or frames on a connection older than the agent) is handed to
// an H2Session for both directions; on a SERVER connection the preface is followed both ways until
// nginx answers, since an HTTP/1-only listener answers it with a 400 that is a request to report.
#pragma once

#include <cstdint>
#include <memory>

#include "candidate_queue.h"
#include "context.h"
#include "h2_session.h"
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

  bool HasPending() const { return !queue_.Empty() || (h2_ != nullptr && h2_->HasOpenStreams()); }

  uint64_t connId = 0;
  uint32_t pid = 0;
  uint64_t lastNs = 0;
  // The worker's syscall record before this connection's connect(), and before the record being
  // handled (PidClock): when the worker was done with what it ran before them.
  uint64_t openBeforeNs = 0;
  uint64_t recordBeforeNs = 0;
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
  friend class H2Session;

  void SetDirection(uint8_t direction);
  bool GuessDirection(const DataRecord& rec);
  bool GuessH2Direction(const DataRecord& rec);
  void MaybeStartH2(const Transfer& x, bool requestSide);
  void StartH2(bool preface);
  void ConfirmH2();
  void AbandonH2();
  void HoldForHttp1(const Transfer& x);
  void EndError(EndCause cause, uint8_t peerState, uint64_t nowNs, uint8_t* error, uint64_t* endNs) const;
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
  void StartQueued(Exchange* server, uint64_t attemptStartNs);

  Candidate* Live(uint64_t seq);
  Candidate* OldestUnanswered(uint64_t* seq);
  // A final response (or HTTP/0.9's bare body) answers this candidate; false for placeholders.
  bool Answer(uint64_t seq, Candidate* c);
  void Complete(uint64_t seq, uint64_t endNs, uint8_t error);
  // An exchange's end: ids if it never got any, end time, error (499 for a client gone unanswered).
  void Finalize(Exchange* ex, uint64_t endNs, uint8_t error);
  // Out of flight: reported, or given back unreported.
  void Emit(Exchange* ex);
  void Report(Exchange* ex, uint64_t endNs, uint8_t error) {
    Finalize(ex, endNs, error);
    Emit(ex);
  }
  void DiscardExchange(Exchange* ex);
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

  std::unique_ptr<H2Session> h2_;  // the connection speaks HTTP/2
  bool h2Tentative_ = false;       // SERVER: a preface nginx has not answered yet
  // SERVER, while the preface is unanswered: the request bytes, for the HTTP/1 framing if nginx
  // answers as HTTP/1 (bounded; what does not fit is not replayed).
  struct HeldTransfer {
    uint64_t timeNs;
    uint64_t result;
    std::vector<uint8_t> bytes;
    uint8_t tail[16];
    uint8_t tailLen;
  };
  std::vector<HeldTransfer> held_;
  bool h2Checked_ = false;         // the first request bytes (or response frames before them) were looked at
  bool attempted_ = false;         // CLIENT: an upstream attempt was written on this connection
};

}  // namespace kw
