#include "bpf_loader.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "errors.h"
#include "log_sink.h"
#include "probes.h"
#include "signals.h"

extern "C" {
#include "kong_uprobe_sidecar.skel.h"
}

namespace kw {

namespace {

constexpr auto kLoadBudget = std::chrono::seconds(10);
constexpr auto kFirstBackoff = std::chrono::milliseconds(100);
constexpr auto kMaxBackoff = std::chrono::milliseconds(1000);

// One open + configure + load. *loadErr is the positive errno of the load step (0 otherwise).
std::string LoadOnce(const LoadOptions& o, kong_uprobe_sidecar** out, int* loadErr) {
  *loadErr = 0;
  kong_uprobe_sidecar* skel = kong_uprobe_sidecar__open();
  if (!skel) return DescribeFailure("open the BPF object", errno);
  skel->rodata->kw_capture_bytes = o.captureBytes;
  skel->rodata->kw_wakeup_bytes = o.wakeupBytes;
  std::memset(const_cast<char*>(skel->rodata->kw_exec_comm), 0, KW_COMM_LEN);
  std::memcpy(const_cast<char*>(skel->rodata->kw_exec_comm), o.execComm.data(),
              o.execComm.size() < KW_COMM_LEN ? o.execComm.size() : KW_COMM_LEN - 1);
  std::string err;
  int rc = bpf_map__set_max_entries(skel->maps.events, o.ringBufferBytes);
  if (rc) err = DescribeFailure("size the events ring buffer", -rc);
  int ncpu = libbpf_num_possible_cpus();
  if (err.empty() && ncpu <= 0) err = DescribeFailure("count possible CPUs", -ncpu);
  if (err.empty() && (rc = bpf_map__set_max_entries(skel->maps.kw_scratch, static_cast<uint32_t>(ncpu)))) {
    err = DescribeFailure("size the per-CPU scratch map", -rc);
  }
  bpf_program* prog;
  bpf_object__for_each_program(prog, skel->obj) {
    if (err.empty()) bpf_program__set_autoload(prog, ProgramNeeded(bpf_program__name(prog), o.libcDataPath));
  }
  if (err.empty() && (rc = kong_uprobe_sidecar__load(skel))) {
    *loadErr = -rc;
    err = DescribeFailure("load the BPF programs into kernel " + KernelRelease(), -rc);
  }
  if (!err.empty()) {
    kong_uprobe_sidecar__destroy(skel);
    return err;
  }
  *out = skel;
  return "";
}

}  // namespace

std::string BpfObject::Load(const LoadOptions& options, LogSink* log, std::unique_ptr<BpfObject>* out) {
  const auto start = std::chrono::steady_clock::now();
  auto backoff = kFirstBackoff;
  for (int attempt = 1;; attempt++) {
    kong_uprobe_sidecar* skel = nullptr;
    int loadErr = 0;
    std::string err;
    {
      SignalBlocker blocked;
      err = LoadOnce(options, &skel, &loadErr);
    }
    if (err.empty()) {
      if (attempt > 1 && log) log->Log(LogLevel::kInfo, "BPF programs loaded at attempt " + std::to_string(attempt));
      out->reset(new BpfObject(skel));
      return "";
    }
    if (loadErr != EAGAIN && loadErr != EINTR) return err;
    auto elapsed = std::chrono::steady_clock::now() - start;
    if (elapsed + backoff > kLoadBudget) {
      return err + " (" + std::to_string(attempt) + " attempts in " +
             std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count()) + " ms)";
    }
    if (log) {
      log->Log(LogLevel::kWarn, "BPF load attempt " + std::to_string(attempt) + " interrupted (" +
                                    std::strerror(loadErr) + "); retrying in " + std::to_string(backoff.count()) +
                                    " ms, for up to 10 s in all");
    }
    std::this_thread::sleep_for(backoff);
    backoff = backoff * 2 > kMaxBackoff ? kMaxBackoff : backoff * 2;
  }
}

BpfObject::~BpfObject() { kong_uprobe_sidecar__destroy(skel_); }

bpf_program* BpfObject::Program(const char* name) const {
  return bpf_object__find_program_by_name(skel_->obj, name);
}

int BpfObject::RingFd() const { return bpf_map__fd(skel_->maps.events); }

std::vector<int> BpfObject::PerProcessMapFds() const {
  return {bpf_map__fd(skel_->maps.kw_conns), bpf_map__fd(skel_->maps.kw_libc_calls),
          bpf_map__fd(skel_->maps.kw_lua_calls), bpf_map__fd(skel_->maps.kw_ssl_calls)};
}

uint64_t* BpfObject::PidBits() const { return reinterpret_cast<uint64_t*>(skel_->bss->kw_pid_bits); }

void BpfObject::ReadCounters(uint64_t (&out)[KW_STAT_MAX]) const {
  for (uint64_t& v : out) v = 0;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return;
  std::vector<uint64_t> perCpu(static_cast<size_t>(ncpu));
  for (uint32_t stat = 0; stat < KW_STAT_MAX; stat++) {
    if (bpf_map__lookup_elem(skel_->maps.kw_stats, &stat, sizeof(stat), perCpu.data(), perCpu.size() * sizeof(uint64_t),
                             0) == 0) {
      for (uint64_t v : perCpu) out[stat] += v;
    }
  }
}

}  // namespace kw
