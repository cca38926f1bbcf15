#!/bin/sh
# Builds the native assembler's libFuzzer target with AddressSanitizer and runs it.
# Usage: test/fuzz/run.sh [seconds] (default 60). Needs clang++ and libclang-rt-<version>-dev.
# Findings are written to .tmp/fuzz/ (crash-*, leak-*); the corpus grows in .tmp/fuzz/corpus.
set -eu
seconds=${1:-60}
root=$(cd "$(dirname "$0")/../.." && pwd)
out="$root/.tmp/fuzz"
mkdir -p "$out/corpus"
cxx=${CXX:-clang++}
"$cxx" -std=c++17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I"$root/native" -I"$root/bpf" \
  "$root/test/fuzz/assembler_fuzz.cc" "$root"/native/assembler/*.cc -lnghttp2 \
  -o "$out/assembler_fuzz"
# Seeds: small programs that open a connection and move a request and a response on it.
printf '\000\001\000\001\001\001\001\000\060\000GET /a HTTP/1.1\r\nHost: h\r\n\r\n\001\001\000\001\026\000HTTP/1.1 200 OK\r\n\r\n' >"$out/corpus/seed-server"
printf '\000\002\000\002\002\003\000\002\030\000GET /b HTTP/1.1\r\n\r\n\003\002\000\002\044\000HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok\004\002\000\001' >"$out/corpus/seed-client"
# HTTP/2: a server connection; the preface, SETTINGS and HEADERS (GET / with :authority) read; HEADERS :status 200 written.
printf '\000\001\000\001\001\001\001\000:\003\004\000\000\000\001\005\001\006\202\204\206A\001h\001\001\000\073\000\001\005\001\001\210\004\001\000\000' >"$out/corpus/seed-h2"
cd "$out"
exec ./assembler_fuzz -max_total_time="$seconds" -dict="$root/test/fuzz/http.dict" -max_len=8192 \
  -print_final_stats=1 corpus
