// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kong-watcher kernel side: sees the bytes Kong's nginx workers move on TCP sockets and
 * the life of each nginx request, and sends records (kong_watcher_events.h) to user space.
 *
 * Default data path: syscall tracepoints, exit only (nginx sockets are non-blocking, so only
 * the return value says how many bytes really moved), arguments taken from the task's user
 * registers. The libc uprobes are a selectable alternative; the nginx and Lua uprobes add
 * request boundaries and Lua time, which no syscall shows. Every hook first checks that the
 * current process is one user space put in kong_processes: all other processes cost one
 * hash lookup.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "kong_watcher_events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KW_AF_UNIX 1
#define KW_AF_INET 2
#define KW_AF_INET6 10
#define KW_SOCK_STREAM 1
#define KW_S_IFMT 0170000
#define KW_S_IFSOCK 0140000
#define KW_RCV_SHUTDOWN 1
#define KW_EAGAIN 11
#define KW_EINPROGRESS 115
/* iovecs walked per readv/writev/recvmsg/sendmsg: nginx's writev chains are short. */
#define KW_MAX_IOV 8
/* ngx_http_request_t.connection and ngx_connection_t.fd: unchanged since nginx 1.0, and
 * Debian's nginx has no DWARF to read them from. */
#define KW_NGX_REQUEST_CONNECTION_OFF 8
#define KW_NGX_CONNECTION_FD_OFF 24

/* Hides a value from the compiler so the masks below survive optimisation: clang drops a mask
 * it can prove redundant, and the verifier then cannot bound the length. */
#define kw_opaque(v) asm volatile("" : "+r"(v))

/* Set by user space before load. */
const volatile __u32 kw_capture_bytes = 512;
const volatile __u64 kw_wakeup_bytes = 256 * 1024;

/* Connection ids are never reused, unlike fds. */
__u64 kw_next_conn_id = 0;

struct kw_conn_state {
	__u64 conn_id;
	__u64 bytes_read;
	__u64 bytes_written;
	__u8 direction; /* enum kw_direction */
	__u8 family;
	/* Not a TCP socket over IP (files, pipes, AF_UNIX, UDP): the access log's write() then
	 * costs one lookup instead of an inode walk. */
	__u8 ignored;
	__u8 _pad[5];
};

/* Worker processes fork from one master, so the same request address appears in each. */
struct kw_request_key {
	__u32 tgid;
	__u32 _pad;
	__u64 request_ptr;
};

struct kw_libc_call {
	__u64 buf; /* buffer, or iovec array when iov is set */
	__u32 fd;
	__u32 iovcnt;
	__u8 iov;
	__u8 _pad[7];
};

struct kw_lua_call {
	__u64 start_ns;
	__u64 request_ptr;
	__u64 phase;
};

/* The DATA record is built here, not on the 512-byte stack. The slack lets the verifier accept
 * masked offsets and lengths without proving their sum stays within data[]. */
struct kw_data_scratch {
	struct kw_data_event ev;
	__u8 slack[2 * KW_MAX_CAPTURE];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct kw_process_info);
} kong_processes SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct kw_request_key);
	__type(value, __u64);
} request_start_times SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, __u64); /* tgid << 32 | fd */
	__type(value, struct kw_conn_state);
} http_requests SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 * 1024 * 1024); /* user space sets the real size before load */
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KW_STAT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} kw_stats SEC(".maps");

/* One slot per CPU, indexed by the running CPU. A plain array, not a PERCPU_ARRAY: per-CPU
 * values are capped at 32 KiB, and this one holds a 16 KiB capture plus verifier slack.
 * max_entries is set to the number of possible CPUs before load. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kw_data_scratch);
} kw_scratch SEC(".maps");

/* libc uprobe entry arguments, keyed by pid_tgid, until the matching uretprobe. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct kw_libc_call);
} kw_libc_calls SEC(".maps");

/* Lua phase handler entry, keyed by pid_tgid, until the handler returns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct kw_lua_call);
} kw_lua_calls SEC(".maps");

static __always_inline void kw_count(__u32 stat)
{
	__u64 *value = bpf_map_lookup_elem(&kw_stats, &stat);

	if (value)
		*value += 1;
}

/* Returns true when the current process is a monitored Kong process, counting the hit. */
static __always_inline bool kw_is_kong(__u64 pid_tgid)
{
	__u32 tgid = pid_tgid >> 32;

	if (!bpf_map_lookup_elem(&kong_processes, &tgid))
		return false;
	kw_count(KW_STAT_HOOK_HITS);
	return true;
}

/* Records go out without a wake-up; the consumer polls on a timer. A wake-up is forced only by
 * the record that crosses the threshold, so a busy ring is drained before it overflows, and a
 * stalled consumer does not cost a wake-up (several microseconds in a VM) per record. */
static __always_inline void kw_output(void *record, __u64 size)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (avail <= kw_wakeup_bytes && avail + size > kw_wakeup_bytes)
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, record, size, flags))
		kw_count(KW_STAT_LOST);
	else
		kw_count(KW_STAT_EVENTS);
}

static __always_inline void kw_fill_header(struct kw_event_header *hdr, __u8 type, __u64 pid_tgid)
{
	hdr->type = type;
	hdr->_pad[0] = 0;
	hdr->_pad[1] = 0;
	hdr->_pad[2] = 0;
	hdr->pid = pid_tgid >> 32;
	hdr->timestamp_ns = bpf_ktime_get_ns();
}

static __always_inline struct pt_regs *kw_user_regs(void)
{
	return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
}

/* The struct sock behind fd when it is a TCP socket over IPv4/IPv6, else NULL. */
static __always_inline struct sock *kw_fd_tcp_sock(__u32 fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *file = NULL;
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_core_read(&file, sizeof(file), &fds[fd]) || !file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & KW_S_IFMT) != KW_S_IFSOCK)
		return NULL;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock)
		return NULL;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return NULL;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family != KW_AF_INET && family != KW_AF_INET6)
		return NULL;
	if (BPF_CORE_READ(sk, sk_type) != KW_SOCK_STREAM)
		return NULL;
	return sk;
}

static __always_inline void kw_emit_open(__u64 pid_tgid, __u32 fd, const struct kw_conn_state *state,
					 struct sock *sk)
{
	struct kw_conn_open_event ev = {};

	kw_fill_header(&ev.hdr, KW_EVENT_CONN_OPEN, pid_tgid);
	ev.conn_id = state->conn_id;
	ev.fd = fd;
	ev.direction = state->direction;
	ev.family = state->family;
	ev.local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	ev.peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (state->family == KW_AF_INET) {
		__be32 local = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 peer = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		__builtin_memcpy(ev.local_addr, &local, 4);
		__builtin_memcpy(ev.peer_addr, &peer, 4);
	} else {
		BPF_CORE_READ_INTO(&ev.local_addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&ev.peer_addr, sk, __sk_common.skc_v6_daddr);
	}
	kw_output(&ev, sizeof(ev));
}

/* New state for fd: tracked (with a CONN_OPEN record) when it is a TCP socket, else ignored. */
static __always_inline void kw_conn_create(__u64 pid_tgid, __u32 fd, __u8 direction)
{
	__u64 key = (pid_tgid & 0xffffffff00000000ULL) | fd;
	struct kw_conn_state state = {};
	struct sock *sk = kw_fd_tcp_sock(fd);

	if (sk) {
		state.conn_id = __sync_fetch_and_add(&kw_next_conn_id, 1) + 1;
		state.direction = direction;
		state.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	} else {
		state.ignored = 1;
	}
	if (bpf_map_update_elem(&http_requests, &key, &state, BPF_ANY)) {
		kw_count(KW_STAT_CONN_MAP_FULL);
		return;
	}
	if (sk) {
		kw_count(KW_STAT_CONN_OPENED);
		kw_emit_open(pid_tgid, fd, &state, sk);
	}
}

/* State of fd, created on first sight for sockets that existed before the agent. */
static __always_inline struct kw_conn_state *kw_conn_get(__u64 pid_tgid, __u32 fd)
{
	__u64 key = (pid_tgid & 0xffffffff00000000ULL) | fd;
	struct kw_conn_state *state = bpf_map_lookup_elem(&http_requests, &key);

	if (state)
		return state;
	kw_conn_create(pid_tgid, fd, KW_DIR_UNKNOWN);
	return bpf_map_lookup_elem(&http_requests, &key);
}

static __always_inline __u32 kw_capture_limit(__u32 moved)
{
	__u32 limit = kw_capture_bytes;

	if (limit > KW_MAX_CAPTURE)
		limit = KW_MAX_CAPTURE;
	return moved < limit ? moved : limit;
}

static __always_inline void kw_copy_buf(struct kw_data_scratch *s, __u64 buf, __u32 moved)
{
	__u32 cap = kw_capture_limit(moved);
	__u32 tail = moved < KW_TAIL_LEN ? moved : KW_TAIL_LEN;

	kw_opaque(cap);
	kw_opaque(tail);
	bpf_probe_read_user(s->ev.data, cap & (2 * KW_MAX_CAPTURE - 1), (void *)buf);
	bpf_probe_read_user(s->ev.tail, tail & (2 * KW_TAIL_LEN - 1), (void *)(buf + moved - tail));
	s->ev.captured_len = cap;
	s->ev.tail_len = tail;
}

/* Copies from an iovec array as far as the syscall really moved bytes. */
static __always_inline void kw_copy_iov(struct kw_data_scratch *s, __u64 iov, __u32 iovcnt, __u32 moved)
{
	__u32 cap = kw_capture_limit(moved);
	__u32 off = 0, left = moved, last_len = 0, tail;
	__u64 last_base = 0;

	for (int i = 0; i < KW_MAX_IOV; i++) {
		struct iovec v;
		__u32 seg;

		if (i >= iovcnt || left == 0)
			break;
		if (bpf_probe_read_user(&v, sizeof(v), (void *)(iov + i * sizeof(v))))
			break;
		seg = v.iov_len < left ? v.iov_len : left;
		if (off < cap) {
			__u32 chunk = cap - off;

			if (chunk > seg)
				chunk = seg;
			kw_opaque(chunk);
			bpf_probe_read_user(&s->ev.data[off & (KW_MAX_CAPTURE - 1)],
					    chunk & (2 * KW_MAX_CAPTURE - 1), v.iov_base);
			off += chunk;
		}
		if (seg) {
			last_base = (__u64)v.iov_base;
			last_len = seg;
		}
		left -= seg;
	}
	tail = last_len < KW_TAIL_LEN ? last_len : KW_TAIL_LEN;
	kw_opaque(tail);
	bpf_probe_read_user(s->ev.tail, tail & (2 * KW_TAIL_LEN - 1), (void *)(last_base + last_len - tail));
	s->ev.captured_len = off;
	s->ev.tail_len = tail;
}

/* One read or write that returned ret. buf is a buffer, or an iovec array when iovcnt > 0;
 * 0 when the bytes are not in user memory (sendfile). */
static __always_inline void kw_data(__u64 pid_tgid, long ret, __u32 fd, __u64 buf, __u32 iovcnt, __u8 op,
				    __u8 source)
{
	struct kw_conn_state *state = kw_conn_get(pid_tgid, fd);
	struct kw_data_scratch *s;
	__u32 cpu, moved, captured;

	if (!state || state->ignored)
		return;
	if (ret > 0) {
		if (op == KW_OP_READ)
			state->bytes_read += ret;
		else
			state->bytes_written += ret;
	}
	cpu = bpf_get_smp_processor_id();
	s = bpf_map_lookup_elem(&kw_scratch, &cpu);
	if (!s)
		return;
	kw_fill_header(&s->ev.hdr, KW_EVENT_DATA, pid_tgid);
	s->ev.conn_id = state->conn_id;
	s->ev.result = ret;
	s->ev.fd = fd;
	s->ev.op = op;
	s->ev.direction = state->direction;
	s->ev.source = source;
	s->ev.flags = 0;
	s->ev.captured_len = 0;
	s->ev.tail_len = 0;
	__builtin_memset(s->ev._pad, 0, sizeof(s->ev._pad));
	moved = ret > 0 ? (__u32)ret : 0;
	if (moved && buf) {
		if (iovcnt)
			kw_copy_iov(s, buf, iovcnt, moved);
		else
			kw_copy_buf(s, buf, moved);
	}
	captured = s->ev.captured_len;
	if (moved > captured)
		s->ev.flags |= KW_DATA_TRUNCATED;
	kw_opaque(captured);
	kw_output(s, offsetof(struct kw_data_event, data) + (captured & (2 * KW_MAX_CAPTURE - 1)));
}

/* ---- syscall tracepoints: the default data path ---- */

/* Exit of a syscall whose arguments are (fd, buf-or-iov, count-or-iovcnt). */
#define KW_SYSCALL_EXIT_IO(name, op, source, is_iov)                                              \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                \
	int kw_sys_exit_##name(struct trace_event_raw_sys_exit *ctx)                              \
	{                                                                                         \
		__u64 pid_tgid = bpf_get_current_pid_tgid();                                      \
		struct pt_regs *regs;                                                             \
		long ret = ctx->ret;                                                              \
                                                                                                  \
		if (!kw_is_kong(pid_tgid) || ret == -KW_EAGAIN)                                   \
			return 0;                                                                 \
		regs = kw_user_regs();                                                            \
		kw_data(pid_tgid, ret, PT_REGS_PARM1_CORE_SYSCALL(regs), PT_REGS_PARM2_CORE_SYSCALL(regs), \
			(is_iov) ? (__u32)PT_REGS_PARM3_CORE_SYSCALL(regs) : 0, op, source);        \
		return 0;                                                                         \
	}

KW_SYSCALL_EXIT_IO(read, KW_OP_READ, KW_SRC_READ, 0)
KW_SYSCALL_EXIT_IO(readv, KW_OP_READ, KW_SRC_READV, 1)
KW_SYSCALL_EXIT_IO(recvfrom, KW_OP_READ, KW_SRC_RECVFROM, 0)
KW_SYSCALL_EXIT_IO(write, KW_OP_WRITE, KW_SRC_WRITE, 0)
KW_SYSCALL_EXIT_IO(writev, KW_OP_WRITE, KW_SRC_WRITEV, 1)
KW_SYSCALL_EXIT_IO(sendto, KW_OP_WRITE, KW_SRC_SENDTO, 0)

/* recvmsg/sendmsg(fd, msghdr, flags): the iovecs hang off the user's msghdr. */
#define KW_SYSCALL_EXIT_MSG(name, op, source)                                                     \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                                \
	int kw_sys_exit_##name(struct trace_event_raw_sys_exit *ctx)                              \
	{                                                                                         \
		__u64 pid_tgid = bpf_get_current_pid_tgid();                                      \
		struct user_msghdr msg = {};                                                      \
		struct pt_regs *regs;                                                             \
		long ret = ctx->ret;                                                              \
                                                                                                  \
		if (!kw_is_kong(pid_tgid) || ret == -KW_EAGAIN)                                   \
			return 0;                                                                 \
		regs = kw_user_regs();                                                            \
		bpf_probe_read_user(&msg, sizeof(msg), (void *)PT_REGS_PARM2_CORE_SYSCALL(regs)); \
		kw_data(pid_tgid, ret, PT_REGS_PARM1_CORE_SYSCALL(regs), (__u64)msg.msg_iov,      \
			msg.msg_iov ? (__u32)msg.msg_iovlen : 0, op, source);                     \
		return 0;                                                                         \
	}

KW_SYSCALL_EXIT_MSG(recvmsg, KW_OP_READ, KW_SRC_RECVMSG)
KW_SYSCALL_EXIT_MSG(sendmsg, KW_OP_WRITE, KW_SRC_SENDMSG)

/* sendfile(out_fd, in_fd, offset, count): bytes come from a file, so only the count is known. */
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int kw_sys_exit_sendfile64(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	long ret = ctx->ret;

	if (!kw_is_kong(pid_tgid) || ret == -KW_EAGAIN)
		return 0;
	kw_data(pid_tgid, ret, PT_REGS_PARM1_CORE_SYSCALL(kw_user_regs()), 0, 0, KW_OP_WRITE, KW_SRC_SENDFILE);
	return 0;
}

/* ---- connection lifetime (attached in every data path mode) ---- */

static __always_inline int kw_accepted(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if (!kw_is_kong(pid_tgid) || ctx->ret < 0)
		return 0;
	kw_conn_create(pid_tgid, ctx->ret, KW_DIR_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int kw_sys_exit_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return kw_accepted(ctx);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int kw_sys_exit_accept(struct trace_event_raw_sys_exit *ctx)
{
	return kw_accepted(ctx);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int kw_sys_exit_connect(struct trace_event_raw_sys_exit *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	long ret = ctx->ret;

	if (!kw_is_kong(pid_tgid) || (ret != 0 && ret != -KW_EINPROGRESS))
		return 0;
	kw_conn_create(pid_tgid, PT_REGS_PARM1_CORE_SYSCALL(kw_user_regs()), KW_DIR_CLIENT);
	return 0;
}

/* Only for tracked sockets at close: one fd table walk per connection, not per request. */
static __always_inline __u8 kw_peer_state(__u32 fd)
{
	struct sock *sk = kw_fd_tcp_sock(fd);
	__u8 peer = 0;

	if (!sk)
		return 0;
	/* sk_shutdown became a plain u8 in 6.x; the probed read works for the older bitfield too */
	if (BPF_CORE_READ_BITFIELD_PROBED(sk, sk_shutdown) & KW_RCV_SHUTDOWN)
		peer |= KW_PEER_CLOSED;
	if (BPF_CORE_READ(sk, sk_err))
		peer |= KW_PEER_RESET;
	return peer;
}

/* Entry, not exit: the fd may be reused by another thread as soon as close() returns. */
SEC("tracepoint/syscalls/sys_enter_close")
int kw_sys_enter_close(struct trace_event_raw_sys_enter *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 fd = ctx->args[0];
	__u64 key = (pid_tgid & 0xffffffff00000000ULL) | fd;
	struct kw_conn_state *state;
	struct kw_conn_close_event ev = {};

	if (!kw_is_kong(pid_tgid))
		return 0;
	state = bpf_map_lookup_elem(&http_requests, &key);
	if (!state)
		return 0;
	if (!state->ignored) {
		kw_fill_header(&ev.hdr, KW_EVENT_CONN_CLOSE, pid_tgid);
		ev.conn_id = state->conn_id;
		ev.fd = fd;
		ev.direction = state->direction;
		ev.peer_state = kw_peer_state(fd);
		ev.bytes_read = state->bytes_read;
		ev.bytes_written = state->bytes_written;
		kw_count(KW_STAT_CONN_CLOSED);
		kw_output(&ev, sizeof(ev));
	}
	bpf_map_delete_elem(&http_requests, &key);
	return 0;
}

/* ---- nginx request lifecycle uprobes (off by default) ---- */

SEC("uprobe")
int BPF_KPROBE(uprobe_kong_http_request, void *r)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kw_request_key key = {.tgid = pid_tgid >> 32, .request_ptr = (__u64)r};
	__u64 now;

	if (!kw_is_kong(pid_tgid))
		return 0;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&request_start_times, &key, &now, BPF_ANY);
	return 0;
}

static __always_inline __s32 kw_ngx_request_fd(__u64 r)
{
	__u64 connection = 0;
	__s32 fd = -1;

	bpf_probe_read_user(&connection, sizeof(connection), (void *)(r + KW_NGX_REQUEST_CONNECTION_OFF));
	if (connection)
		bpf_probe_read_user(&fd, sizeof(fd), (void *)(connection + KW_NGX_CONNECTION_FD_OFF));
	return fd;
}

static __always_inline __u64 kw_conn_id_of(__u64 pid_tgid, __s32 fd)
{
	__u64 key = (pid_tgid & 0xffffffff00000000ULL) | (__u32)fd;
	struct kw_conn_state *state;

	if (fd < 0)
		return 0;
	state = bpf_map_lookup_elem(&http_requests, &key);
	return state && !state->ignored ? state->conn_id : 0;
}

/* ngx_http_free_request(r, rc): the request is over (after the log phase). start_ns is 0 when
 * its start was not seen (requests that never reached ngx_http_process_request). */
SEC("uprobe")
int BPF_KPROBE(uprobe_kong_http_response, void *r)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kw_request_key key = {.tgid = pid_tgid >> 32, .request_ptr = (__u64)r};
	struct kw_ngx_request_event ev = {};
	__u64 *start;
	__s32 fd;

	if (!kw_is_kong(pid_tgid))
		return 0;
	kw_fill_header(&ev.hdr, KW_EVENT_NGX_REQUEST, pid_tgid);
	start = bpf_map_lookup_elem(&request_start_times, &key);
	if (start) {
		ev.start_ns = *start;
		bpf_map_delete_elem(&request_start_times, &key);
	}
	fd = kw_ngx_request_fd((__u64)r);
	ev.end_ns = ev.hdr.timestamp_ns;
	ev.request_ptr = (__u64)r;
	ev.fd = fd;
	ev.conn_id = kw_conn_id_of(pid_tgid, fd);
	kw_output(&ev, sizeof(ev));
	return 0;
}

/* ngx_http_lua_{rewrite,access,content,log}_handler(r): one program, the phase is the cookie. */
SEC("uprobe")
int BPF_KPROBE(uprobe_kong_lua_handler, void *r)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kw_lua_call call = {};

	if (!kw_is_kong(pid_tgid))
		return 0;
	call.start_ns = bpf_ktime_get_ns();
	call.request_ptr = (__u64)r;
	call.phase = bpf_get_attach_cookie(ctx);
	bpf_map_update_elem(&kw_lua_calls, &pid_tgid, &call, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_kong_lua_handler)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kw_lua_phase_event ev = {};
	struct kw_lua_call *call;
	__s32 fd;

	if (!kw_is_kong(pid_tgid))
		return 0;
	call = bpf_map_lookup_elem(&kw_lua_calls, &pid_tgid);
	if (!call)
		return 0;
	kw_fill_header(&ev.hdr, KW_EVENT_LUA_PHASE, pid_tgid);
	ev.start_ns = call->start_ns;
	ev.end_ns = ev.hdr.timestamp_ns;
	ev.request_ptr = call->request_ptr;
	ev.phase = call->phase;
	bpf_map_delete_elem(&kw_lua_calls, &pid_tgid);
	fd = kw_ngx_request_fd(ev.request_ptr);
	ev.fd = fd;
	ev.conn_id = kw_conn_id_of(pid_tgid, fd);
	kw_output(&ev, sizeof(ev));
	return 0;
}

/* ---- libc uprobes: the "libc" data path (about 10x the cost of a tracepoint per hit) ---- */

static __always_inline int kw_libc_enter(__u64 fd, __u64 buf, __u32 iovcnt)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kw_libc_call call = {.buf = buf, .fd = fd, .iovcnt = iovcnt, .iov = iovcnt > 0};

	if (!kw_is_kong(pid_tgid))
		return 0;
	bpf_map_update_elem(&kw_libc_calls, &pid_tgid, &call, BPF_ANY);
	return 0;
}

/* libc returns -1 and sets errno, which lives in user TLS: failed calls (mostly EAGAIN on
 * nginx's non-blocking sockets) are dropped. */
static __always_inline int kw_libc_return(long ret, __u8 op, __u8 source)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kw_libc_call *found, call;

	if (!kw_is_kong(pid_tgid))
		return 0;
	found = bpf_map_lookup_elem(&kw_libc_calls, &pid_tgid);
	if (!found)
		return 0;
	call = *found;
	bpf_map_delete_elem(&kw_libc_calls, &pid_tgid);
	if (ret < 0)
		return 0;
	kw_data(pid_tgid, ret, call.fd, call.buf, call.iov ? call.iovcnt : 0, op, source);
	return 0;
}

/* read, recv, recvfrom: (fd, buf, ...) */
SEC("uprobe")
int BPF_KPROBE(uprobe_read, int fd, void *buf)
{
	return kw_libc_enter(fd, (__u64)buf, 0);
}

SEC("uprobe")
int BPF_KPROBE(uprobe_readv, int fd, void *iov, int iovcnt)
{
	return kw_libc_enter(fd, (__u64)iov, iovcnt > 0 ? iovcnt : 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_read, long ret)
{
	return kw_libc_return(ret, KW_OP_READ, KW_SRC_LIBC_READ);
}

/* write, send, sendto: (fd, buf, ...) */
SEC("uprobe")
int BPF_KPROBE(uprobe_write, int fd, void *buf)
{
	return kw_libc_enter(fd, (__u64)buf, 0);
}

SEC("uprobe")
int BPF_KPROBE(uprobe_writev, int fd, void *iov, int iovcnt)
{
	return kw_libc_enter(fd, (__u64)iov, iovcnt > 0 ? iovcnt : 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(uretprobe_write, long ret)
{
	return kw_libc_return(ret, KW_OP_WRITE, KW_SRC_LIBC_WRITE);
}
