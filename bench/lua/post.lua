-- 1 KB JSON POSTs; BENCH_THINK_MS > 0 paces each connection with a uniform random think time
-- (mean BENCH_THINK_MS) so nothing saturates; BENCH_PATHS (comma-separated) picks a random path
-- per request (many agents). done() prints one JSON line the harness parses.
local think = tonumber(os.getenv("BENCH_THINK_MS") or "0")
local paths = {}
for p in string.gmatch(os.getenv("BENCH_PATHS") or "/v1/chat/completions", "[^,]+") do
  paths[#paths + 1] = p
end
local body_file = io.open(os.getenv("BENCH_BODY_FILE"), "rb")
wrk.method = "POST"
wrk.body = body_file:read("*a")
body_file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer unused"

function setup(thread)
  thread:set("seed", math.random(1, 1000000))
end

function init(args)
  math.randomseed(seed or os.time())
end

if #paths == 1 then
  wrk.path = paths[1]  -- a static request: wrk calls no Lua per request
else
  request = function()
    return wrk.format(nil, paths[math.random(#paths)])
  end
end

if think > 0 then
  delay = function()
    return math.random(0, 2 * think)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
    '"p999_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.mean, latency.max))
end
