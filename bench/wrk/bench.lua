-- wrk script for bench/run.py: the request shape comes from the environment, and `done` prints the
-- latency distribution in a form the report can parse (wrk's own --latency output has only four points).
--
--   BENCH_METHOD      GET (default) or PUT
--   BENCH_PUT_NAMES   PUT only: number of distinct note names written in turn (default 64), so the store
--                     replaces existing files instead of growing
--   BENCH_BODY_BYTES  PUT only: body size in bytes (default 256)
--   BENCH_TOKEN       sent as `Authorization: Bearer <token>` when set (goapp's notes API wants it)

local method = os.getenv("BENCH_METHOD") or "GET"
if method ~= "GET" and method ~= "PUT" then
  error("BENCH_METHOD=" .. method .. ": allowed GET or PUT")
end
local token = os.getenv("BENCH_TOKEN")
if token and token ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. token
end

if method == "PUT" then
  local names = tonumber(os.getenv("BENCH_PUT_NAMES") or "64")
  local size = tonumber(os.getenv("BENCH_BODY_BYTES") or "256")
  if not names or names < 1 then error("BENCH_PUT_NAMES must be a positive integer") end
  if not size or size < 1 then error("BENCH_BODY_BYTES must be a positive integer") end
  local body = string.rep("n", size)
  local headers = { ["Content-Type"] = "application/octet-stream", ["Authorization"] = wrk.headers["Authorization"] }
  local i = 0
  -- The URL's path is the prefix; each request appends the next name's number.
  local prefix = nil
  request = function()
    prefix = prefix or wrk.path
    i = i % names + 1
    return wrk.format("PUT", prefix .. i, headers, body)
  end
end

local points = { 1, 5, 10, 20, 25, 30, 40, 50, 60, 70, 75, 80, 90, 95, 97.5, 99, 99.5, 99.9, 99.99, 100 }

done = function(summary, latency, _)
  local e = summary.errors
  io.write(string.format("BENCH requests %d\n", summary.requests))
  io.write(string.format("BENCH duration_us %d\n", summary.duration))
  io.write(string.format("BENCH errors connect=%d read=%d write=%d status=%d timeout=%d\n",
    e.connect, e.read, e.write, e.status, e.timeout))
  io.write(string.format("BENCH latency_mean_us %.1f\n", latency.mean))
  for _, p in ipairs(points) do
    io.write(string.format("BENCH latency_p %g %d\n", p, latency:percentile(p)))
  end
end
