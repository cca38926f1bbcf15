-- wrk script for the bench: prints one machine-readable line with exact figures (wrk keeps
-- latencies in microseconds), and, when BENCH_DELAY_MS is set, paces every connection to one
-- request per (latency + delay): a fixed offered rate set by the number of connections.
local delay_ms = tonumber(os.getenv('BENCH_DELAY_MS') or '0')

if delay_ms > 0 then
  function delay()
    return delay_ms
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"connect_errors":%d,"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
      '"latency_mean_us":%.2f,"latency_p50_us":%d,"latency_p90_us":%d,"latency_p99_us":%d,' ..
      '"latency_p999_us":%d,"latency_max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
