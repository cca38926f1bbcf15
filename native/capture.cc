#include "capture.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "args.h"
#include "batch_sink.h"
#include "drain_thread.h"
#include "errors.h"
#include "log_sink.h"
#include "probes.h"

extern "C" {
#include "kong_uprobe_sidecar.skel.h"
#include "kong_watcher_events.h"
}

namespace kw {

namespace {

constexpr const char* kKernelBtf = "/sys/kernel/btf/vmlinux";

bool IsPowerOfTwo(uint64_t v) { return v && !(v & (v - 1)); }

Napi::Value Throw(Napi::Env env, const std::string& message) {
  Napi::Error::New(env, message).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace

Napi::Function Capture::Define(Napi::Env env) {
  return DefineClass(env, "Capture",
                     {
                         InstanceMethod<&Capture::Start>("start"),
                         InstanceMethod<&Capture::AddProcess>("addProcess"),
                         InstanceMethod<&Capture::RemoveProcess>("removeProcess"),
                         InstanceMethod<&Capture::AttachUprobes>("attachUprobes"),
                         InstanceMethod<&Capture::DetachUprobes>("detachUprobes"),
                         InstanceMethod<&Capture::Stats>("stats"),
                         InstanceMethod<&Capture::Stop>("stop"),
                     });
}

Capture::Capture(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Capture>(info) {
  Napi::Env env = info.Env();
  Napi::Object opts;
  if (!ArgCount(info, 1, "Capture") || !ReadObject(env, info[0], "options", &opts)) return;
  Napi::Function onBatch, onLog;
  std::string dataPath;
  long page = sysconf(_SC_PAGESIZE);
  if (!ReadUint(env, opts.Get("ringBufferBytes"), "ringBufferBytes", page, 1ULL << 30, &options_.ringBufferBytes) ||
      !ReadUint(env, opts.Get("captureBytes"), "captureBytes", 0, KW_MAX_CAPTURE, &options_.captureBytes) ||
      !ReadUint(env, opts.Get("wakeupBytes"), "wakeupBytes", 0, 1ULL << 30, &options_.wakeupBytes) ||
      !ReadUint(env, opts.Get("pollIntervalMs"), "pollIntervalMs", 1, 10000, &options_.pollIntervalMs) ||
      !ReadString(env, opts.Get("dataPath"), "dataPath", &dataPath) ||
      !ReadFunction(env, opts.Get("onBatch"), "onBatch", &onBatch) ||
      !ReadFunction(env, opts.Get("onLog"), "onLog", &onLog)) {
    return;
  }
  if (!IsPowerOfTwo(options_.ringBufferBytes) || options_.ringBufferBytes % page) {
    Napi::TypeError::New(env, "ringBufferBytes must be a power of two and a multiple of the page size")
        .ThrowAsJavaScriptException();
    return;
  }
  if (dataPath != "syscalls" && dataPath != "libc") {
    Napi::TypeError::New(env, "dataPath must be 'syscalls' or 'libc'").ThrowAsJavaScriptException();
    return;
  }
  options_.libcDataPath = dataPath == "libc";
  onBatch_ = Napi::Persistent(onBatch);
  onLog_ = Napi::Persistent(onLog);
}

Capture::~Capture() { Shutdown(); }

// The verifier gives up with EAGAIN when a signal arrives while it works (a profiler's SIGPROF,
// a terminal resize): open and load again rather than fail the agent.
std::string Capture::Open() {
  std::string err;
  for (int attempt = 0; attempt < 5; attempt++) {
    int loadErrno = 0;
    err = OpenOnce(&loadErrno);
    if (loadErrno != EAGAIN) return err;
    kong_uprobe_sidecar__destroy(skel_);
    skel_ = nullptr;
    log_->Log(LogLevel::kDebug, "BPF load interrupted by a signal; trying again");
  }
  return err;
}

std::string Capture::OpenOnce(int* loadErrno) {
  if (access(kKernelBtf, R_OK) != 0) {
    return std::string("kernel lacks BTF (") + kKernelBtf + " missing; needs CONFIG_DEBUG_INFO_BTF), kernel " +
           KernelRelease();
  }
  skel_ = kong_uprobe_sidecar__open();
  if (!skel_) return DescribeFailure("open the BPF object", errno);
  skel_->rodata->kw_capture_bytes = static_cast<uint32_t>(options_.captureBytes);
  skel_->rodata->kw_wakeup_bytes = options_.wakeupBytes;
  int err = bpf_map__set_max_entries(skel_->maps.events, static_cast<uint32_t>(options_.ringBufferBytes));
  if (err) return DescribeFailure("size the events ring buffer", -err);
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return DescribeFailure("count possible CPUs", -ncpu);
  err = bpf_map__set_max_entries(skel_->maps.kw_scratch, static_cast<uint32_t>(ncpu));
  if (err) return DescribeFailure("size the per-CPU scratch map", -err);
  if (options_.libcDataPath) {
    for (const TracepointSpec& tp : kTracepoints) {
      if (!tp.dataPath) continue;
      bpf_program__set_autoload(bpf_object__find_program_by_name(skel_->obj, tp.program), false);
    }
  }
  err = kong_uprobe_sidecar__load(skel_);
  *loadErrno = -err;
  if (err) return DescribeFailure("load the BPF programs into kernel " + KernelRelease(), -err);
  return "";
}

std::string Capture::AttachTracepoints() {
  bool mounted = false;
  std::string err = EnsureTracefs(&mounted);
  if (!err.empty()) return err;
  if (mounted) log_->Log(LogLevel::kInfo, "mounted tracefs at /sys/kernel/tracing for the syscall tracepoints");
  for (const TracepointSpec& tp : kTracepoints) {
    if (tp.dataPath && options_.libcDataPath) continue;
    bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, tp.program);
    if (!prog) return std::string("BPF program ") + tp.program + " missing from the object: rebuild with make -C bpf";
    bpf_link* link = bpf_program__attach_tracepoint(prog, "syscalls", tp.name);
    if (!link) {
      int err = errno;
      return DescribeFailure(std::string("attach tracepoint syscalls/") + tp.name + " (kernel " + KernelRelease() + ")",
                             err);
    }
    tracepointLinks_.push_back(link);
  }
  return "";
}

std::string Capture::MapRingPositions() {
  // Consumer page then producer page: read-only, so user space can read the fill level
  // without touching libbpf's own mapping.
  size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  void* mem = mmap(nullptr, 2 * page, PROT_READ, MAP_SHARED, bpf_map__fd(skel_->maps.events), 0);
  if (mem == MAP_FAILED) return DescribeFailure("map the ring buffer positions", errno);
  ringPages_ = mem;
  ringPagesLen_ = 2 * page;
  return "";
}

Napi::Value Capture::Start(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (stopped_) return Throw(env, "capture was stopped; create a new one");
  if (started_) return Throw(env, "capture already started");
  log_.reset(new LogSink(env, onLog_.Value()));
  log_->RouteLibbpf();
  std::string err = Open();
  if (err.empty()) err = AttachTracepoints();
  if (err.empty()) err = MapRingPositions();
  if (err.empty()) {
    sink_.reset(new BatchSink(env, onBatch_.Value(), log_.get()));
    drain_.reset(new DrainThread(bpf_map__fd(skel_->maps.events), static_cast<int>(options_.pollIntervalMs),
                                 sink_.get(), log_.get()));
    err = drain_->Start();
  }
  if (!err.empty()) {
    Shutdown();
    stopped_ = false;
    return Throw(env, err);
  }
  started_ = true;
  return env.Undefined();
}

bool Capture::Running(Napi::Env env) {
  if (started_ && !stopped_) return true;
  Napi::Error::New(env, stopped_ ? "capture was stopped" : "call start() first").ThrowAsJavaScriptException();
  return false;
}

Napi::Value Capture::AddProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t pid, role;
  if (!ArgCount(info, 2, "addProcess") || !ReadUint(env, info[0], "pid", 1, UINT32_MAX, &pid) ||
      !ReadUint(env, info[1], "role", 1, 2, &role) || !Running(env)) {
    return env.Undefined();
  }
  uint32_t key = static_cast<uint32_t>(pid);
  kw_process_info value = {static_cast<uint32_t>(role), 0};
  int err = bpf_map__update_elem(skel_->maps.kong_processes, &key, sizeof(key), &value, sizeof(value), BPF_ANY);
  if (err) return Throw(env, DescribeFailure("add pid " + std::to_string(pid) + " to kong_processes", -err));
  return env.Undefined();
}

// Removes what the BPF side keeps for an exited process: its fds are never closed through
// close() when it dies, so their entries would otherwise stay until the map fills.
void Capture::PurgeProcess(uint32_t pid) {
  struct Target {
    bpf_map* map;
    size_t keySize;
  };
  const Target targets[] = {{skel_->maps.http_requests, 8},
                            {skel_->maps.request_start_times, 16},
                            {skel_->maps.kw_libc_calls, 8},
                            {skel_->maps.kw_lua_calls, 8}};
  for (const Target& t : targets) {
    int fd = bpf_map__fd(t.map);
    uint8_t key[16], next[16];
    std::vector<std::vector<uint8_t>> doomed;
    void* prev = nullptr;
    while (bpf_map_get_next_key(fd, prev, next) == 0) {
      uint32_t tgid;
      // u64 keys are tgid << 32 | x; the request key starts with the tgid.
      if (t.keySize == 8) {
        uint64_t k;
        std::memcpy(&k, next, 8);
        tgid = static_cast<uint32_t>(k >> 32);
      } else {
        std::memcpy(&tgid, next, 4);
      }
      if (tgid == pid) doomed.emplace_back(next, next + t.keySize);
      std::memcpy(key, next, t.keySize);
      prev = key;
    }
    for (const auto& k : doomed) bpf_map_delete_elem(fd, k.data());
  }
}

Napi::Value Capture::RemoveProcess(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t pid;
  if (!ArgCount(info, 1, "removeProcess") || !ReadUint(env, info[0], "pid", 1, UINT32_MAX, &pid) || !Running(env)) {
    return env.Undefined();
  }
  uint32_t key = static_cast<uint32_t>(pid);
  bpf_map__delete_elem(skel_->maps.kong_processes, &key, sizeof(key), 0);
  PurgeProcess(key);
  return env.Undefined();
}

Napi::Value Capture::AttachUprobes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t pid;
  std::string binary, libc;
  Napi::Object set;
  bool want[3] = {false, false, false};
  if (!ArgCount(info, 3, "attachUprobes") || !ReadUint(env, info[0], "pid", 1, INT32_MAX, &pid) ||
      !ReadString(env, info[1], "binaryPath", &binary) || !ReadObject(env, info[2], "set", &set) ||
      !ReadOptionalBool(env, set, "nginx", &want[0]) || !ReadOptionalBool(env, set, "lua", &want[1]) ||
      !ReadOptionalBool(env, set, "libc", &want[2])) {
    return env.Undefined();
  }
  if (info.Length() > 3 && !info[3].IsUndefined() && !ReadString(env, info[3], "libcPath", &libc)) {
    return env.Undefined();
  }
  if (!Running(env)) return env.Undefined();

  std::vector<std::string> luaFiles = {binary};
  if (want[1]) {
    for (const std::string& f : MappedFiles(static_cast<int>(pid), "ngx_http_lua_module")) luaFiles.push_back(f);
  }
  std::vector<std::string> libcFiles;
  if (!libc.empty()) {
    libcFiles.push_back(libc);
  } else if (want[2]) {
    libcFiles = MappedFiles(static_cast<int>(pid), "/libc.so");
    if (libcFiles.empty()) libcFiles = MappedFiles(static_cast<int>(pid), "/libc-");
  }

  Napi::Array attached = Napi::Array::New(env);
  Napi::Array missing = Napi::Array::New(env);
  std::vector<bpf_link*>& links = uprobeLinks_[static_cast<int>(pid)];
  std::string firstError;
  for (const UprobeSpec& spec : kUprobes) {
    std::string setName = spec.set;
    if ((setName == "nginx" && !want[0]) || (setName == "lua" && !want[1]) || (setName == "libc" && !want[2])) continue;
    const std::vector<std::string> binaryOnly = {binary};
    const std::vector<std::string>& files =
        spec.target == UprobeTarget::kBinary ? binaryOnly : spec.target == UprobeTarget::kLua ? luaFiles : libcFiles;
    std::string label = std::string(spec.symbol) + (spec.retprobe ? " (return)" : "");
    bpf_program* prog = bpf_object__find_program_by_name(skel_->obj, spec.program);
    bool done = false;
    std::string why = files.empty() ? "no libc mapped in pid " + std::to_string(pid) : "";
    for (const std::string& file : files) {
      LIBBPF_OPTS(bpf_uprobe_opts, opts);
      opts.func_name = spec.symbol;
      opts.retprobe = spec.retprobe;
      opts.bpf_cookie = spec.cookie;
      bpf_link* link = bpf_program__attach_uprobe_opts(prog, static_cast<pid_t>(pid), file.c_str(), 0, &opts);
      if (link) {
        links.push_back(link);
        attached.Set(attached.Length(), label + "@" + file);
        done = true;
        break;
      }
      int err = errno;
      if (!why.empty()) why += "; ";
      why += err == ENOENT ? std::string("symbol ") + spec.symbol + " not found in " + file
                           : DescribeFailure("attach uprobe " + std::string(spec.symbol) + " in " + file, err);
    }
    if (!done) {
      missing.Set(missing.Length(), label + ": " + why);
      if (firstError.empty()) firstError = why;
    }
  }
  if (attached.Length() == 0 && missing.Length() > 0) {
    return Throw(env, "no uprobe attached for pid " + std::to_string(pid) + " (" + binary + "): " + firstError);
  }
  Napi::Object result = Napi::Object::New(env);
  result.Set("attached", attached);
  result.Set("missing", missing);
  return result;
}

void Capture::DetachPid(int pid) {
  auto it = uprobeLinks_.find(pid);
  if (it == uprobeLinks_.end()) return;
  for (bpf_link* link : it->second) bpf_link__destroy(link);
  uprobeLinks_.erase(it);
}

Napi::Value Capture::DetachUprobes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  uint64_t pid;
  if (!ArgCount(info, 1, "detachUprobes") || !ReadUint(env, info[0], "pid", 1, INT32_MAX, &pid)) {
    return env.Undefined();
  }
  DetachPid(static_cast<int>(pid));
  return env.Undefined();
}

Capture::Totals Capture::ReadTotals() {
  Totals t;
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu > 0) {
    std::vector<uint64_t> perCpu(static_cast<size_t>(ncpu));
    for (uint32_t stat = 0; stat < KW_STAT_MAX; stat++) {
      if (bpf_map__lookup_elem(skel_->maps.kw_stats, &stat, sizeof(stat), perCpu.data(), perCpu.size() * 8, 0) == 0) {
        for (uint64_t v : perCpu) t.stat[stat] += v;
      }
    }
  }
  size_t page = ringPagesLen_ / 2;
  const volatile uint64_t* consumer = static_cast<const volatile uint64_t*>(ringPages_);
  const volatile uint64_t* producer =
      reinterpret_cast<const volatile uint64_t*>(static_cast<const uint8_t*>(ringPages_) + page);
  uint64_t c = *consumer, p = *producer;
  t.ringUsed = p >= c ? p - c : 0;
  t.batches = sink_ ? sink_->Batches() : 0;
  return t;
}

Napi::Value Capture::Stats(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!started_) return Throw(env, "call start() first");
  Totals t = stopped_ ? final_ : ReadTotals();
  Napi::Object out = Napi::Object::New(env);
  out.Set("events", static_cast<double>(t.stat[KW_STAT_EVENTS]));
  out.Set("lost", static_cast<double>(t.stat[KW_STAT_LOST]));
  out.Set("hookHits", static_cast<double>(t.stat[KW_STAT_HOOK_HITS]));
  out.Set("connOpened", static_cast<double>(t.stat[KW_STAT_CONN_OPENED]));
  out.Set("connClosed", static_cast<double>(t.stat[KW_STAT_CONN_CLOSED]));
  out.Set("connMapFull", static_cast<double>(t.stat[KW_STAT_CONN_MAP_FULL]));
  out.Set("batches", static_cast<double>(t.batches));
  out.Set("ringUsedBytes", static_cast<double>(t.ringUsed));
  out.Set("ringSizeBytes", static_cast<double>(options_.ringBufferBytes));
  return out;
}

Napi::Value Capture::Stop(const Napi::CallbackInfo& info) {
  Shutdown();
  return info.Env().Undefined();
}

// Order matters: no new records once the links are gone, then the last ones are drained and
// queued for JS, then the kernel objects are freed. Safe to call more than once.
void Capture::Shutdown() {
  if (stopped_) return;
  stopped_ = true;
  while (!uprobeLinks_.empty()) DetachPid(uprobeLinks_.begin()->first);
  for (bpf_link* link : tracepointLinks_) bpf_link__destroy(link);
  tracepointLinks_.clear();
  drain_.reset();
  if (skel_ && ringPages_) final_ = ReadTotals();
  sink_.reset();
  if (ringPages_) {
    munmap(ringPages_, ringPagesLen_);
    ringPages_ = nullptr;
  }
  if (skel_) {
    kong_uprobe_sidecar__destroy(skel_);
    skel_ = nullptr;
  }
  log_.reset();
}

}  // namespace kw
