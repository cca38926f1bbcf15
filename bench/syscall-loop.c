// A process that is not Kong, timing its own syscalls: what every process on the node pays while
// agents are attached (syscall tracepoints are global). Prints one JSON line:
//   {"pipe_ns":..,"socket_ns":..}  ns per syscall, median of the rounds
// pipe: write+read of 1 byte on a pipe (syscalls the agent does not hook: slow path only)
// socket: sendto+recvfrom of 1 byte on a socketpair (hooked: the BPF pid filter rejects them)
// Usage: syscall-loop [iterations per round] [rounds]
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void* a, const void* b) {
  double x = *(const double*)a, y = *(const double*)b;
  return x < y ? -1 : x > y;
}

static double median(double* v, int n) {
  qsort(v, n, sizeof(double), cmp);
  return v[n / 2];
}

int main(int argc, char** argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 200000;
  int rounds = argc > 2 ? atoi(argv[2]) : 7;
  int pipefd[2], sv[2];
  char byte = 'x';
  if (rounds < 1 || rounds > 64 || pipe(pipefd) != 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
  double pipe_ns[64], socket_ns[64];
  for (int r = 0; r < rounds; r++) {
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
      if (write(pipefd[1], &byte, 1) != 1 || read(pipefd[0], &byte, 1) != 1) return 2;
    }
    double t1 = now_ns();
    for (long i = 0; i < iterations; i++) {
      if (sendto(sv[0], &byte, 1, 0, NULL, 0) != 1 || recvfrom(sv[1], &byte, 1, 0, NULL, NULL) != 1) return 3;
    }
    double t2 = now_ns();
    pipe_ns[r] = (t1 - t0) / (2.0 * iterations);
    socket_ns[r] = (t2 - t1) / (2.0 * iterations);
  }
  printf("{\"pipe_ns\":%.1f,\"socket_ns\":%.1f}\n", median(pipe_ns, rounds), median(socket_ns, rounds));
  return 0;
}
