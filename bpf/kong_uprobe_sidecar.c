// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * kong-watcher kernel side: sees the bytes Kong's nginx workers move on TCP sockets, follows
 * Kong's processes as they fork, exec and exit, and sends records (kong_watcher_events.h) to
 * user space.
 *
 * Syscall tracepoints run for every process on the node, so every hook first tests the current
 * tgid in a bitmap (kw_pid_bits: one load and a mask); the rest of the node pays only that.
 * User space sets the bits of the processes it follows; the sched raw tracepoints below give a
 * monitored process's forked children their bit before they run their first instruction, and
 * clear a dead process's bit.
 *
 * Data path: exit of the syscalls nginx moves socket bytes with (recv -> recvfrom, send ->
 * sendto, readv, writev, sendfile); exit only, because nginx sockets are non-blocking and only
 * the return value says how many bytes moved; arguments are read from the task's user
 * registers. read/write are not hooked: for nginx they are file and log I/O, and for the rest
 * of the node they are the hottest syscalls. recvmsg/sendmsg are not hooked: nginx uses them
 * only for unix and UDP channels. The libc uprobes are a selectable alternative; the Lua uprobes
 * add time in Kong's Lua, which no syscall shows.
 *
 * TLS: OpenSSL moves the ciphertext with read()/write(), which are not hooked, so a TLS socket's
 * hooked syscalls carry no payload. Its plaintext comes from uprobes on nginx's own TLS recv and
 * send (ngx_ssl_recv, ngx_ssl_write), else on the libssl the worker maps (SSL_read/SSL_write and
 * their _ex forms, tied to the socket by SSL_set_fd), and goes into the same DATA records
 * (KW_DATA_TLS) on the socket's connection id.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "kong_watcher_events.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define KW_AF_INET 2
#define KW_AF_INET6 10
#define KW_SOCK_STREAM 1
#define KW_S_IFMT 0170000
#define KW_S_IFSOCK 0140000
#define KW_RCV_SHUTDOWN 1
#define KW_EAGAIN 11
#define KW_EINPROGRESS 115
#define KW_MSG_PEEK 2
/* iovecs walked per readv/writev: nginx's chains are short; a longer one sets
 * KW_DATA_TAIL_UNKNOWN rather than send a tail that is not the transfer's end. */
#define KW_MAX_IOV 16
/* ngx_http_request_t.connection and ngx_connection_t.fd: unchanged since nginx 1.0, and
 * Debian's nginx has no DWARF to read them from. */
#define KW_NGX_REQUEST_CONNECTION_OFF 8
#define KW_NGX_CONNECTION_FD_OFF 24
/* ngx_ssl_write's result when the connection is broken (NGX_AGAIN, -2, is a retry) */
#define KW_NGX_ERROR -1
/* DATA records one ngx_ssl_recv/ngx_ssl_write call is cut into, KW_MAX_CAPTURE bytes each:
 * 256 KiB, nginx's HTTP/2 read buffer (http2_recv_buffer_size), read whole when a client uploads
 * faster than nginx reads. One SSL_read returns a TLS record (16 KiB at most) and needs none. */
#define KW_TLS_CHUNKS 16

/* Hides a value from the compiler so the masks below survive optimisation: clang drops a mask
 * it can prove redundant, and the verifier then cannot bound the length. */
#define kw_opaque(v) asm volatile("" : "+r"(v))

/* Set by user space before load. */
const volatile __u32 kw_capture_bytes = 512;
const volatile __u64 kw_wakeup_bytes = 256 * 1024;
/* A process that execs a binary with this comm is reported (PROC EXEC) even when not
 * monitored, so user space learns of a new nginx at once; all zero = none. */
const volatile char kw_exec_comm[KW_COMM_LEN] = {};

/* One bit per tgid, set and cleared by user space through the mmapped .bss (atomic or/and) and
 * by the sched hooks below. */
__u64 kw_pid_bits[KW_PID_WORDS] = {};
/* Connection ids are never reused, unlike fds. */
__u64 kw_next_conn_id = 0;

struct kw_conn_state {
	__u64 conn_id;
	__u64 bytes_read;
	__u64 bytes_written;
	__u8 direction; /* enum kw_direction */
	__u8 family;
	/* Not a TCP socket over IP (files, pipes, AF_UNIX, UDP): later hits on the fd cost one
	 * lookup instead of an fd table walk. */
	__u8 ignored;
	/* TLS: its plaintext comes from the TLS uprobes, and its syscalls carry ciphertext. */
	__u8 tls;
	__u8 _pad[4];
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

/* An SSL object of one process. */
struct kw_ssl_key {
	__u32 tgid;
	__u32 _pad;
	__u64 ssl;
};

struct kw_ssl_link {
	__s32 fd; /* < 0: first used with no SSL_set_fd seen (made before the agent attached): counted once */
	__u32 _pad;
};

/* SSL_read/SSL_write[_ex] (or ngx_ssl_recv/ngx_ssl_write) arguments from entry to return. */
struct kw_ssl_call {
	__u64 ssl; /* the SSL object (or nginx's ngx_connection_t) */
	__u64 buf;
	__u64 num;       /* bytes asked for */
	__u64 count_ptr; /* the _ex forms' size_t *: the count moved; 0 for SSL_read/SSL_write */
};

/* The DATA record is built here, not on the 512-byte stack. The slack lets the verifier accept
 * masked offsets and lengths without proving their sum stays within data[]; iov holds the
 * iovec array of a readv/writev, read in one copy (twice KW_MAX_IOV for the mask's sake). */
struct kw_data_scratch {
	struct kw_data_event ev;
	__u8 slack[2 * KW_MAX_CAPTURE];
	struct iovec iov[2 * KW_MAX_IOV];
};

/* Keyed by tgid << 32 | fd. User space deletes a process's entries when it exits or execs
 * (its sockets close without close()), or when it stops following it. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, __u64);
	__type(value, struct kw_conn_state);
} kw_conns SEC(".maps");

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

/* The socket fd of each SSL object, from SSL_set_fd. LRU: nothing frees an entry (SSL_free is not
 * hooked, to spare a trap per connection); SSL_set_fd overwrites it when the address is reused. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct kw_ssl_key);
	__type(value, struct kw_ssl_link);
} kw_ssl_fds SEC(".maps");

/* SSL read/write entry arguments, keyed by pid_tgid, until the matching uretprobe. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct kw_ssl_call);
} kw_ssl_calls SEC(".maps");

/* Lua phase handler entry, keyed by pid_tgid, until the handler returns. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct kw_lua_call);
} kw_lua_calls SEC(".maps");

static __always_inline bool kw_monitored(__u32 tgid)
{
	return kw_pid_bits[(tgid >> 6) & (KW_PID_WORDS - 1)] & (1ULL << (tgid & 63));
}

static __always_inline void kw_count(__u32 stat)
{
	__u64 *value = bpf_map_lookup_elem(&kw_stats, &stat);

	if (value)
		*value += 1;
}

/* Records go out without a wake-up; the consumer polls on a timer. A wake-up is forced only by
 * the record that crosses the threshold, so a busy ring is drained before it overflows, and a
 * stalled consumer does not cost a wake-up (several microseconds in a VM) per record. Process
 * events are rare and urgent (a new master's workers fork within milliseconds): they wake it. */
static __always_inline void kw_output_flags(void *record, __u64 size, bool urgent)
{
	__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 flags = BPF_RB_NO_WAKEUP;

	if (urgent || (avail <= kw_wakeup_bytes && avail + size > kw_wakeup_bytes))
		flags = BPF_RB_FORCE_WAKEUP;
	if (bpf_ringbuf_output(&events, record, size, flags))
		kw_count(KW_STAT_LOST);
	else
		kw_count(KW_STAT_EVENTS);
}

static __always_inline void kw_output(void *record, __u64 size)
{
	kw_output_flags(record, size, false);
}

static __always_inline void kw_fill_header(struct kw_event_header *hdr, __u8 type, __u32 tgid)
{
	hdr->type = type;
	hdr->_pad[0] = 0;
	hdr->_pad[1] = 0;
	hdr->_pad[2] = 0;
	hdr->pid = tgid;
	hdr->timestamp_ns = bpf_ktime_get_ns();
}

/* The struct sock behind fd when it is a TCP socket over IPv4/IPv6, else NULL. Runs once per
 * connection (open, first sight, close), never per transfer. */
static __always_inline struct sock *kw_fd_tcp_sock(struct task_struct *task, __u32 fd)
{
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

static __always_inline void kw_emit_open(__u32 tgid, __u32 fd, const struct kw_conn_state *state, struct sock *sk)
{
	struct kw_conn_open_event ev = {};

	kw_fill_header(&ev.hdr, KW_EVENT_CONN_OPEN, tgid);
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
static __always_inline void kw_conn_create(struct task_struct *task, __u32 tgid, __u32 fd, __u8 direction)
{
	__u64 key = ((__u64)tgid << 32) | fd;
	struct kw_conn_state state = {};
	struct sock *sk = kw_fd_tcp_sock(task, fd);

	if (sk) {
		state.conn_id = __sync_fetch_and_add(&kw_next_conn_id, 1) + 1;
		state.direction = direction;
		state.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	} else {
		state.ignored = 1;
	}
	if (bpf_map_update_elem(&kw_conns, &key, &state, BPF_ANY)) {
		kw_count(KW_STAT_CONN_MAP_FULL);
		return;
	}
	if (sk) {
		kw_count(KW_STAT_CONN_OPENED);
		kw_emit_open(tgid, fd, &state, sk);
	}
}

/* State of fd, created on first sight for sockets that existed before the agent. */
static __always_inline struct kw_conn_state *kw_conn_get(struct task_struct *task, __u32 tgid, __u32 fd)
{
	__u64 key = ((__u64)tgid << 32) | fd;
	struct kw_conn_state *state = bpf_map_lookup_elem(&kw_conns, &key);

	if (state)
		return state;
	kw_conn_create(task, tgid, fd, KW_DIR_UNKNOWN);
	return bpf_map_lookup_elem(&kw_conns, &key);
}

/* The first cap bytes of a plain buffer; the last bytes only when data[] does not reach them. */
static __always_inline void kw_copy_buf(struct kw_data_scratch *s, __u64 buf, __u32 moved, __u32 cap)
{
	__u32 tail;

	kw_opaque(cap);
	if (bpf_probe_read_user(s->ev.data, cap & (2 * KW_MAX_CAPTURE - 1), (void *)buf)) {
		s->ev.flags |= KW_DATA_TAIL_UNKNOWN;
		return;
	}
	s->ev.captured_len = cap;
	if (moved <= cap)
		return;
	tail = moved < KW_TAIL_LEN ? moved : KW_TAIL_LEN;
	kw_opaque(tail);
	if (bpf_probe_read_user(s->ev.tail, tail & (2 * KW_TAIL_LEN - 1), (void *)(buf + moved - tail)))
		s->ev.flags |= KW_DATA_TAIL_UNKNOWN;
	else
		s->ev.tail_len = tail;
}

/* Copies from an iovec array as far as the syscall really moved bytes. The tail comes from the
 * last two segments moved (a chunked body's "\r\n" and "0\r\n\r\n" are often segments of their
 * own); when the walk stops before every moved byte is accounted for, no tail is sent. */
static __always_inline void kw_copy_iov(struct kw_data_scratch *s, __u64 iov, __u32 iovcnt, __u32 moved,
					__u32 cap)
{
	__u32 n = iovcnt < KW_MAX_IOV ? iovcnt : KW_MAX_IOV;
	__u32 off = 0, left = moved, last_len = 0, prev_len = 0, n0 = 0, n1;
	__u64 last_base = 0, prev_base = 0;

	kw_opaque(n);
	if (bpf_probe_read_user(s->iov, (n & (2 * KW_MAX_IOV - 1)) * sizeof(struct iovec), (void *)iov)) {
		s->ev.flags |= KW_DATA_TAIL_UNKNOWN;
		return;
	}
	for (int i = 0; i < KW_MAX_IOV; i++) {
		__u64 base;
		__u32 seg;

		if (i >= n || left == 0)
			break;
		base = (__u64)s->iov[i].iov_base;
		seg = s->iov[i].iov_len < left ? s->iov[i].iov_len : left;
		if (seg == 0)
			continue;
		if (off < cap) {
			__u32 chunk = cap - off;

			if (chunk > seg)
				chunk = seg;
			kw_opaque(chunk);
			if (bpf_probe_read_user(&s->ev.data[off & (KW_MAX_CAPTURE - 1)], chunk & (2 * KW_MAX_CAPTURE - 1),
						(void *)base))
				break;
			off += chunk;
		}
		prev_base = last_base;
		prev_len = last_len;
		last_base = base;
		last_len = seg;
		left -= seg;
	}
	s->ev.captured_len = off;
	if (left) {
		s->ev.flags |= KW_DATA_TAIL_UNKNOWN;
		return;
	}
	if (moved <= off)
		return;
	n1 = last_len < KW_TAIL_LEN ? last_len : KW_TAIL_LEN;
	if (n1 < KW_TAIL_LEN)
		n0 = KW_TAIL_LEN - n1 < prev_len ? KW_TAIL_LEN - n1 : prev_len;
	kw_opaque(n0);
	kw_opaque(n1);
	if (bpf_probe_read_user(s->ev.tail, n0 & (KW_TAIL_LEN - 1), (void *)(prev_base + prev_len - n0)) ||
	    bpf_probe_read_user(&s->ev.tail[n0 & (KW_TAIL_LEN - 1)], n1 & (2 * KW_TAIL_LEN - 1),
				(void *)(last_base + last_len - n1))) {
		s->ev.flags |= KW_DATA_TAIL_UNKNOWN;
		return;
	}
	s->ev.tail_len = n0 + n1;
}

/* One read or write that returned ret. buf is a buffer, or an iovec array when iovcnt > 0;
 * 0 when the bytes are not in user memory (sendfile). flags: KW_DATA_TLS for TLS plaintext.
 * Returns the record sent (still in this CPU's scratch), or NULL when none was. */
static __always_inline struct kw_data_scratch *kw_data(struct task_struct *task, __u32 tgid, long ret, __u32 fd,
						       __u64 buf, __u32 iovcnt, __u8 op, __u8 source, __u8 flags)
{
	struct kw_conn_state *state = kw_conn_get(task, tgid, fd);
	struct kw_data_scratch *s;
	__u32 cpu, moved, cap, captured;

	if (!state || state->ignored)
		return NULL;
	/* Ciphertext never reaches the assembler. sendfile is let through: on a TLS socket it moves
	 * plaintext for kernel TLS. */
	if (flags & KW_DATA_TLS)
		state->tls = 1;
	else if (state->tls && ret > 0 && source != KW_SRC_SENDFILE)
		return NULL;
	if (ret > 0) {
		if (op == KW_OP_READ)
			state->bytes_read += ret;
		else
			state->bytes_written += ret;
	}
	cpu = bpf_get_smp_processor_id();
	s = bpf_map_lookup_elem(&kw_scratch, &cpu);
	if (!s)
		return NULL;
	kw_fill_header(&s->ev.hdr, KW_EVENT_DATA, tgid);
	s->ev.conn_id = state->conn_id;
	s->ev.result = ret;
	s->ev.fd = fd;
	s->ev.op = op;
	s->ev.direction = state->direction;
	s->ev.source = source;
	s->ev.flags = flags;
	s->ev.captured_len = 0;
	s->ev.tail_len = 0;
	__builtin_memset(s->ev._pad, 0, sizeof(s->ev._pad));
	moved = ret > 0 ? (__u32)ret : 0;
	cap = kw_capture_bytes < KW_MAX_CAPTURE ? kw_capture_bytes : KW_MAX_CAPTURE;
	if (cap > moved)
		cap = moved;
	if (moved && buf) {
		if (iovcnt)
			kw_copy_iov(s, buf, iovcnt, moved, cap);
		else
			kw_copy_buf(s, buf, moved, cap);
	} else if (moved) {
		s->ev.flags |= KW_DATA_TAIL_UNKNOWN;
	}
	captured = s->ev.captured_len;
	if (moved > captured)
		s->ev.flags |= KW_DATA_TRUNCATED;
	kw_opaque(captured);
	kw_output(s, offsetof(struct kw_data_event, data) + (captured & (2 * KW_MAX_CAPTURE - 1)));
	return s;
}

/* The rest of a TLS call that moved more than a record holds, after kw_data sent its first
 * KW_MAX_CAPTURE bytes from this CPU's scratch: consecutive records on the same connection (the
 * first one's header), as if read (or written) one after the other. Each record is whole unless
 * CAPTURE_BYTES is smaller (no tails then). A global function: the verifier checks it once, not
 * once per path through kw_data. */
__noinline int kw_data_rest(__u64 buf, long off, long moved)
{
	__u32 cap = kw_capture_bytes < KW_MAX_CAPTURE ? kw_capture_bytes : KW_MAX_CAPTURE;
	__u32 cpu = bpf_get_smp_processor_id();
	struct kw_data_scratch *s = bpf_map_lookup_elem(&kw_scratch, &cpu);

	if (!s)
		return 0;
	for (int i = 1; i < KW_TLS_CHUNKS; i++) {
		__u32 chunk, copy;

		if (off >= moved)
			return 0;
		/* the last record takes all that is left */
		chunk = moved - off > KW_MAX_CAPTURE && i < KW_TLS_CHUNKS - 1 ? KW_MAX_CAPTURE : moved - off;
		copy = chunk < cap ? chunk : cap;
		kw_opaque(copy);
		if (bpf_probe_read_user(s->ev.data, copy & (2 * KW_MAX_CAPTURE - 1), (void *)(buf + off)))
			copy = 0;
		s->ev.hdr.timestamp_ns = bpf_ktime_get_ns();
		s->ev.result = chunk;
		s->ev.flags = copy < chunk ? KW_DATA_TLS | KW_DATA_TRUNCATED | KW_DATA_TAIL_UNKNOWN : KW_DATA_TLS;
		s->ev.captured_len = copy;
		s->ev.tail_len = 0;
		kw_opaque(copy);
		kw_output(s, offsetof(struct kw_data_event, data) + (copy & (2 * KW_MAX_CAPTURE - 1)));
		off += chunk;
	}
	return 0;
}

/* ---- syscall tracepoints: the default data path ---- */

/* Exit of a syscall whose arguments are (fd, buf-or-iov, count-or-iovcnt). The bitmap test
 * comes first and costs the rest of the node one load; EAGAIN (a non-blocking socket with
 * nothing to read) is dropped before any map work. With peek_arg4, bytes a recv(MSG_PEEK) looked
 * at are dropped: they are read again later (nginx peeks at a TLS listener's first byte, and at
 * idle upstream keep-alive connections); its EOF and errors still count. */
static __always_inline int kw_io_exit(long ret, __u8 op, __u8 source, bool iov, bool in_user_memory,
				      bool peek_arg4)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;
	struct pt_regs *regs;

	if (!kw_monitored(tgid) || ret == -KW_EAGAIN)
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (peek_arg4 && ret > 0 && (PT_REGS_PARM4_SYSCALL(regs) & KW_MSG_PEEK))
		return 0;
	kw_data(task, tgid, ret, PT_REGS_PARM1_SYSCALL(regs), in_user_memory ? PT_REGS_PARM2_SYSCALL(regs) : 0,
		iov ? (__u32)PT_REGS_PARM3_SYSCALL(regs) : 0, op, source, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_recvfrom")
int kw_recvfrom(struct trace_event_raw_sys_exit *ctx)
{
	return kw_io_exit(ctx->ret, KW_OP_READ, KW_SRC_RECVFROM, false, true, true);
}

SEC("tracepoint/syscalls/sys_exit_readv")
int kw_readv(struct trace_event_raw_sys_exit *ctx)
{
	return kw_io_exit(ctx->ret, KW_OP_READ, KW_SRC_READV, true, true, false);
}

SEC("tracepoint/syscalls/sys_exit_sendto")
int kw_sendto(struct trace_event_raw_sys_exit *ctx)
{
	return kw_io_exit(ctx->ret, KW_OP_WRITE, KW_SRC_SENDTO, false, true, false);
}

SEC("tracepoint/syscalls/sys_exit_writev")
int kw_writev(struct trace_event_raw_sys_exit *ctx)
{
	return kw_io_exit(ctx->ret, KW_OP_WRITE, KW_SRC_WRITEV, true, true, false);
}

/* sendfile(out_fd, in_fd, offset, count): bytes come from a file, so only the count is known. */
SEC("tracepoint/syscalls/sys_exit_sendfile64")
int kw_sendfile(struct trace_event_raw_sys_exit *ctx)
{
	return kw_io_exit(ctx->ret, KW_OP_WRITE, KW_SRC_SENDFILE, false, false, false);
}

/* ---- connection lifetime (attached in every data path mode) ---- */

static __always_inline int kw_accepted(long ret)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;

	if (!kw_monitored(tgid) || ret < 0)
		return 0;
	kw_conn_create(task, tgid, ret, KW_DIR_SERVER);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int kw_accept4(struct trace_event_raw_sys_exit *ctx)
{
	return kw_accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int kw_accept(struct trace_event_raw_sys_exit *ctx)
{
	return kw_accepted(ctx->ret);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int kw_connect(struct trace_event_raw_sys_exit *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;
	long ret = ctx->ret;
	struct pt_regs *regs;

	if (!kw_monitored(tgid) || (ret != 0 && ret != -KW_EINPROGRESS))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	kw_conn_create(task, tgid, PT_REGS_PARM1_SYSCALL(regs), KW_DIR_CLIENT);
	return 0;
}

/* Only for tracked sockets at close: one fd table walk per connection, not per request. */
static __always_inline __u8 kw_peer_state(struct task_struct *task, __u32 fd)
{
	struct sock *sk = kw_fd_tcp_sock(task, fd);
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
int kw_close(struct trace_event_raw_sys_enter *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;
	__u32 fd;
	__u64 key;
	struct kw_conn_state *state;
	struct kw_conn_close_event ev = {};

	if (!kw_monitored(tgid))
		return 0;
	fd = ctx->args[0];
	key = ((__u64)tgid << 32) | fd;
	state = bpf_map_lookup_elem(&kw_conns, &key);
	if (!state)
		return 0;
	if (!state->ignored) {
		kw_fill_header(&ev.hdr, KW_EVENT_CONN_CLOSE, tgid);
		ev.conn_id = state->conn_id;
		ev.fd = fd;
		ev.direction = state->direction;
		ev.peer_state = kw_peer_state(task, fd);
		ev.bytes_read = state->bytes_read;
		ev.bytes_written = state->bytes_written;
		kw_count(KW_STAT_CONN_CLOSED);
		kw_output(&ev, sizeof(ev));
	}
	bpf_map_delete_elem(&kw_conns, &key);
	return 0;
}

/* ---- processes: raw tracepoints, so they need no tracefs and no BTF-typed attach ---- */

static __always_inline void kw_emit_proc(__u8 kind, __u32 pid, __u32 ppid, const char *comm)
{
	struct kw_proc_event ev = {};

	kw_fill_header(&ev.hdr, KW_EVENT_PROC, pid);
	ev.ppid = ppid;
	ev.event = kind;
	bpf_probe_read_kernel(ev.comm, sizeof(ev.comm), comm);
	kw_output_flags(&ev, sizeof(ev), true);
}

/* sched_process_fork(parent, child), run by the parent. A new process (not a thread) of a
 * monitored one is monitored before it runs: a worker forked by a reload, or a respawned one,
 * is seen from its first accept. */
SEC("raw_tp/sched_process_fork")
int kw_proc_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 tgid = task->tgid;
	__u32 pid = BPF_CORE_READ(child, pid);

	if (pid != BPF_CORE_READ(child, tgid))
		return 0;
	if (!kw_monitored(tgid)) {
		/* A bit already set for a new process is stale: user space followed a pid that died
		 * before its bit was set, and the pid now names an unrelated process. */
		if (kw_monitored(pid))
			__sync_fetch_and_and(&kw_pid_bits[(pid >> 6) & (KW_PID_WORDS - 1)], ~(1ULL << (pid & 63)));
		return 0;
	}
	__sync_fetch_and_or(&kw_pid_bits[(pid >> 6) & (KW_PID_WORDS - 1)], 1ULL << (pid & 63));
	kw_count(KW_STAT_FORKS_FOLLOWED);
	kw_emit_proc(KW_PROC_FORK, pid, tgid, child->comm);
	return 0;
}

/* sched_process_exit(task), run by each exiting thread. When the last thread of a monitored
 * process exits, its bit is cleared and user space is told: the kernel closes the process's
 * sockets without close(), so no CONN_CLOSE will come. */
SEC("raw_tp/sched_process_exit")
int kw_proc_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;

	if (!kw_monitored(tgid))
		return 0;
	/* signal->live counts the threads still running; do_exit decrements it before this hook. */
	if (task->signal->live.counter)
		return 0;
	__sync_fetch_and_and(&kw_pid_bits[(tgid >> 6) & (KW_PID_WORDS - 1)], ~(1ULL << (tgid & 63)));
	kw_emit_proc(KW_PROC_EXIT, tgid, 0, task->comm);
	return 0;
}

static __always_inline bool kw_is_exec_comm(const char *comm)
{
	if (!kw_exec_comm[0])
		return false;
	for (int i = 0; i < KW_COMM_LEN; i++) {
		if (comm[i] != kw_exec_comm[i])
			return false;
		if (!comm[i])
			return true;
	}
	return true;
}

/* sched_process_exec(task, old_pid, bprm), run by the task after the new image is in place. */
SEC("raw_tp/sched_process_exec")
int kw_proc_exec(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;
	char comm[KW_COMM_LEN] = {};

	bpf_get_current_comm(comm, sizeof(comm));
	if (!kw_monitored(tgid) && !kw_is_exec_comm(comm))
		return 0;
	kw_emit_proc(KW_PROC_EXEC, tgid, 0, comm);
	return 0;
}

/* ---- Lua phase uprobes (off by default) ---- */

static __always_inline __s32 kw_ngx_request_fd(__u64 r)
{
	__u64 connection = 0;
	__s32 fd = -1;

	bpf_probe_read_user(&connection, sizeof(connection), (void *)(r + KW_NGX_REQUEST_CONNECTION_OFF));
	if (connection)
		bpf_probe_read_user(&fd, sizeof(fd), (void *)(connection + KW_NGX_CONNECTION_FD_OFF));
	return fd;
}

static __always_inline __u64 kw_conn_id_of(__u32 tgid, __s32 fd)
{
	__u64 key = ((__u64)tgid << 32) | (__u32)fd;
	struct kw_conn_state *state;

	if (fd < 0)
		return 0;
	state = bpf_map_lookup_elem(&kw_conns, &key);
	return state && !state->ignored ? state->conn_id : 0;
}

/* ngx_http_lua_{rewrite,access,content,log}_handler(r): one program, the phase is the cookie. */
SEC("uprobe")
int BPF_KPROBE(kw_lua_enter, void *r)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kw_lua_call call = {};

	if (!kw_monitored(pid_tgid >> 32))
		return 0;
	call.start_ns = bpf_ktime_get_ns();
	call.request_ptr = (__u64)r;
	call.phase = bpf_get_attach_cookie(ctx);
	bpf_map_update_elem(&kw_lua_calls, &pid_tgid, &call, BPF_ANY);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(kw_lua_return)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct kw_lua_phase_event ev = {};
	struct kw_lua_call *call;
	__s32 fd;

	if (!kw_monitored(tgid))
		return 0;
	call = bpf_map_lookup_elem(&kw_lua_calls, &pid_tgid);
	if (!call)
		return 0;
	kw_fill_header(&ev.hdr, KW_EVENT_LUA_PHASE, tgid);
	ev.start_ns = call->start_ns;
	ev.end_ns = ev.hdr.timestamp_ns;
	ev.request_ptr = call->request_ptr;
	ev.phase = call->phase;
	bpf_map_delete_elem(&kw_lua_calls, &pid_tgid);
	fd = kw_ngx_request_fd(ev.request_ptr);
	ev.fd = fd;
	ev.conn_id = kw_conn_id_of(tgid, fd);
	kw_output(&ev, sizeof(ev));
	return 0;
}

/* ---- libc uprobes: the "libc" data path (about 20x the cost of a tracepoint per hit) ---- */

static __always_inline int kw_libc_enter(__u64 fd, __u64 buf, __u32 iovcnt)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kw_libc_call call = {.buf = buf, .fd = fd, .iovcnt = iovcnt, .iov = iovcnt > 0};

	if (!kw_monitored(pid_tgid >> 32))
		return 0;
	bpf_map_update_elem(&kw_libc_calls, &pid_tgid, &call, BPF_ANY);
	return 0;
}

/* libc returns -1 and sets errno, which lives in user TLS: failed calls (mostly EAGAIN on
 * nginx's non-blocking sockets) are dropped. */
static __always_inline int kw_libc_return(long ret, __u8 op, __u8 source)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct kw_libc_call *found, call;

	if (!kw_monitored(tgid))
		return 0;
	found = bpf_map_lookup_elem(&kw_libc_calls, &pid_tgid);
	if (!found)
		return 0;
	call = *found;
	bpf_map_delete_elem(&kw_libc_calls, &pid_tgid);
	if (ret < 0)
		return 0;
	kw_data(bpf_get_current_task_btf(), tgid, ret, call.fd, call.buf, call.iov ? call.iovcnt : 0, op, source, 0);
	return 0;
}

/* read, recv, recvfrom: (fd, buf, ...) */
SEC("uprobe")
int BPF_KPROBE(kw_libc_rd, int fd, void *buf)
{
	return kw_libc_enter(fd, (__u64)buf, 0);
}

SEC("uprobe")
int BPF_KPROBE(kw_libc_rdv, int fd, void *iov, int iovcnt)
{
	return kw_libc_enter(fd, (__u64)iov, iovcnt > 0 ? iovcnt : 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(kw_libc_rd_ret, long ret)
{
	return kw_libc_return(ret, KW_OP_READ, KW_SRC_LIBC_READ);
}

/* write, send, sendto: (fd, buf, ...) */
SEC("uprobe")
int BPF_KPROBE(kw_libc_wr, int fd, void *buf)
{
	return kw_libc_enter(fd, (__u64)buf, 0);
}

SEC("uprobe")
int BPF_KPROBE(kw_libc_wrv, int fd, void *iov, int iovcnt)
{
	return kw_libc_enter(fd, (__u64)iov, iovcnt > 0 ? iovcnt : 0);
}

SEC("uretprobe")
int BPF_KRETPROBE(kw_libc_wr_ret, long ret)
{
	return kw_libc_return(ret, KW_OP_WRITE, KW_SRC_LIBC_WRITE);
}

/* ---- TLS plaintext (on by default), first choice: nginx's own TLS recv and send ----
 * ngx_ssl_recv(c, buf, size) and ngx_ssl_write(c, data, size) are c->recv and c->send of every
 * TLS connection nginx has: clients, https upstreams, Lua cosockets, HTTP/2. One call per read
 * event (nginx loops over SSL_read inside, and reads early data there too), and the socket is
 * c->fd: nothing to link, connections older than the agent included. Their first instruction is
 * a push, which the kernel emulates, where SSL_read's needs a single-step: a probed call costs
 * about 10 µs here instead of 25. A plaintext connection never calls them. */

SEC("uprobe")
int BPF_KPROBE(kw_ngx_ssl_enter, void *c, void *buf, __u64 size)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kw_ssl_call call = {.ssl = (__u64)c, .buf = (__u64)buf, .num = size};

	if (!kw_monitored(pid_tgid >> 32))
		return 0;
	bpf_map_update_elem(&kw_ssl_calls, &pid_tgid, &call, BPF_ANY);
	return 0;
}

/* ret: bytes moved; 0 for a read at the peer's end; NGX_AGAIN; or NGX_ERROR, after which nginx
 * drops the connection: a write that failed so is reported with the bytes nginx tried to send,
 * so that the answer's status is known (nginx logs it). A call that moved more than one record
 * holds is reported as consecutive reads (or writes) of KW_MAX_CAPTURE bytes, so that every byte
 * is copied: HTTP/2's frames are found in all of them. */
static __always_inline int kw_ngx_ssl_return(long ret, __u8 op, __u8 source)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct kw_ssl_call *found, call;
	struct kw_data_scratch *s;
	struct kw_conn_state *state;
	__s32 fd = -1;
	long moved = ret, first;
	__u64 key;

	if (!kw_monitored(tgid))
		return 0;
	found = bpf_map_lookup_elem(&kw_ssl_calls, &pid_tgid);
	if (!found)
		return 0;
	call = *found;
	bpf_map_delete_elem(&kw_ssl_calls, &pid_tgid);
	if (op == KW_OP_WRITE && ret == KW_NGX_ERROR) {
		if (call.num == 0)
			return 0;
		moved = call.num;
	} else if (ret < 0 || (ret == 0 && op == KW_OP_WRITE)) {
		return 0;
	}
	bpf_probe_read_user(&fd, sizeof(fd), (void *)(call.ssl + KW_NGX_CONNECTION_FD_OFF));
	if (fd < 0)
		return 0;
	first = moved > KW_MAX_CAPTURE ? KW_MAX_CAPTURE : moved;
	s = kw_data(bpf_get_current_task_btf(), tgid, first, fd, call.buf, 0, op, source, KW_DATA_TLS);
	if (!s || moved <= first)
		return 0;
	kw_data_rest(call.buf, first, moved);
	key = ((__u64)tgid << 32) | (__u32)fd;
	state = bpf_map_lookup_elem(&kw_conns, &key);
	if (state && op == KW_OP_READ)
		state->bytes_read += moved - first;
	else if (state)
		state->bytes_written += moved - first;
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(kw_ngx_ssl_rd_ret, long ret)
{
	return kw_ngx_ssl_return(ret, KW_OP_READ, KW_SRC_SSL_READ);
}

SEC("uretprobe")
int BPF_KRETPROBE(kw_ngx_ssl_wr_ret, long ret)
{
	return kw_ngx_ssl_return(ret, KW_OP_WRITE, KW_SRC_SSL_WRITE);
}

/* ---- TLS plaintext, else: OpenSSL's calls ----
 * For an nginx without those symbols: attached per worker to the libssl it maps (or to the
 * binary when OpenSSL is linked in). Per TLS connection: one SSL_set_fd; per SSL_read or
 * SSL_write call: its entry and its return (nginx calls SSL_read twice per read event, the second
 * to hear "want read"). */

/* SSL_set_fd(ssl, fd): nginx ties every SSL object to its socket here, client and upstream side. */
SEC("uprobe")
int BPF_KPROBE(kw_ssl_set_fd, void *ssl, int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;
	struct kw_ssl_key key = {.tgid = tgid, .ssl = (__u64)ssl};
	struct kw_ssl_link link = {.fd = fd};
	struct kw_conn_state *state;

	if (!kw_monitored(tgid) || fd < 0)
		return 0;
	bpf_map_update_elem(&kw_ssl_fds, &key, &link, BPF_ANY);
	state = kw_conn_get(task, tgid, fd);
	if (state)
		state->tls = 1;
	return 0;
}

static __always_inline int kw_ssl_enter(void *ssl, void *buf, __u64 num, void *count_ptr)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	struct kw_ssl_call call = {.ssl = (__u64)ssl, .buf = (__u64)buf, .num = num, .count_ptr = (__u64)count_ptr};

	if (!kw_monitored(pid_tgid >> 32))
		return 0;
	/* A library whose SSL_read wraps SSL_read_ex (or the reverse) overwrites the outer call with
	 * the same arguments; the inner return reports it, the outer one then finds nothing. */
	bpf_map_update_elem(&kw_ssl_calls, &pid_tgid, &call, BPF_ANY);
	return 0;
}

/* SSL_read(ssl, buf, num), SSL_write(ssl, buf, num) */
SEC("uprobe")
int BPF_KPROBE(kw_ssl_rw, void *ssl, void *buf, int num)
{
	return kw_ssl_enter(ssl, buf, num > 0 ? num : 0, NULL);
}

/* SSL_read_ex(ssl, buf, num, size_t *readbytes), SSL_write_ex(ssl, buf, num, size_t *written) */
SEC("uprobe")
int BPF_KPROBE(kw_ssl_rw_ex, void *ssl, void *buf, __u64 num, void *count_ptr)
{
	return kw_ssl_enter(ssl, buf, num, count_ptr);
}

/* A write that failed because the socket is gone (reset by the peer): nginx will not retry it,
 * and it logs the answer it tried to send. "Want write" leaves the socket established, and nginx
 * retries the same bytes later, so those are never reported here. */
static __always_inline bool kw_ssl_write_lost(struct task_struct *task, __u32 fd)
{
	struct sock *sk = kw_fd_tcp_sock(task, fd);

	return sk && (BPF_CORE_READ(sk, __sk_common.skc_state) == TCP_CLOSE || BPF_CORE_READ(sk, sk_err));
}

/* Calls that moved bytes are reported, and a read that returned 0 (the peer closed the TLS
 * session, or its socket). A failure is mostly "want read/write", which only SSL_get_error tells
 * from an error: a broken socket is seen at close (kw_close's peer state), and a write lost to it
 * is reported with the bytes nginx tried to send, so that its answer's status is known. */
static __always_inline int kw_ssl_return(int ret, __u8 op, __u8 source)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	struct kw_ssl_call *found, call;
	struct kw_ssl_key key = {.tgid = tgid};
	struct kw_ssl_link *link, unlinked = {.fd = -1};
	struct task_struct *task;
	long moved = 0;
	bool failed;

	if (!kw_monitored(tgid))
		return 0;
	found = bpf_map_lookup_elem(&kw_ssl_calls, &pid_tgid);
	if (!found)
		return 0;
	call = *found;
	bpf_map_delete_elem(&kw_ssl_calls, &pid_tgid);
	if (call.count_ptr) {
		/* the _ex forms: 1 and the count on success, 0 on any failure (EOF included) */
		__u64 n = 0;

		failed = ret != 1 || bpf_probe_read_user(&n, sizeof(n), (void *)call.count_ptr) || n == 0;
		moved = n;
	} else {
		failed = ret < 0 || (ret == 0 && op == KW_OP_WRITE);
		moved = ret;
	}
	if (failed && (op != KW_OP_WRITE || call.num == 0))
		return 0;
	key.ssl = call.ssl;
	link = bpf_map_lookup_elem(&kw_ssl_fds, &key);
	if (!link) {
		if (!bpf_map_update_elem(&kw_ssl_fds, &key, &unlinked, BPF_NOEXIST))
			kw_count(KW_STAT_TLS_UNLINKED);
		return 0;
	}
	if (link->fd < 0)
		return 0;
	task = bpf_get_current_task_btf();
	if (failed) {
		if (!kw_ssl_write_lost(task, link->fd))
			return 0;
		moved = call.num;
	}
	kw_data(task, tgid, moved, link->fd, call.buf, 0, op, source, KW_DATA_TLS);
	return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(kw_ssl_rd_ret, int ret)
{
	return kw_ssl_return(ret, KW_OP_READ, KW_SRC_SSL_READ);
}

SEC("uretprobe")
int BPF_KRETPROBE(kw_ssl_wr_ret, int ret)
{
	return kw_ssl_return(ret, KW_OP_WRITE, KW_SRC_SSL_WRITE);
}
