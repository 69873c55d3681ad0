-- wrk script of the benchmark: POST JSON bodies (or GET) to one endpoint, report one JSON line.
--
-- wrk -s bench/load.lua <url> -- <host> <body or @file-prefix or -> [@<authorization-file>]
--   <body>            the same body on every request (the challenge endpoint);
--   @<file-prefix>    each thread sends the lines of <file-prefix>-<thread>.jsonl in order,
--                     each once (the token endpoint: every body redeems its own session or
--                     refresh token); when they run out it sends an invalid body, counted as
--                     "exhausted";
--   -                 GET without a body (the userinfo endpoint);
--   @<authorization-file>  its first line is the Authorization header of every request
--                     ("Bearer <access token>"; in a file, not on the command line).
-- The result line counts, per thread, the bodies it sent ("sent"): the rest are unused.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  thread:set("exhausted", 0)
  thread:set("sent", 0)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local bodies = nil
local fixed_body = nil

function init(args)
  wrk.headers["Host"] = args[1]
  local source = args[2]
  if args[3] ~= nil then
    local file = assert(io.open(string.sub(args[3], 2)))
    wrk.headers["Authorization"] = file:read("*l")
    file:close()
  end
  if source == "-" then
    wrk.method = "GET"
    return
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  if string.sub(source, 1, 1) == "@" then
    bodies = {}
    for line in io.lines(string.sub(source, 2) .. "-" .. id .. ".jsonl") do
      bodies[#bodies + 1] = line
    end
  else
    fixed_body = source
  end
end

function request()
  if bodies == nil then
    return wrk.format(nil, nil, nil, fixed_body)
  end
  local body = bodies[sent + 1]
  if body == nil then
    exhausted = exhausted + 1
    body = '{"grant_type": "exhausted"}'
  else
    sent = sent + 1
  end
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local exhausted_total = 0
  local sent_counts = {}
  for _, thread in ipairs(threads) do
    exhausted_total = exhausted_total + thread:get("exhausted")
    sent_counts[#sent_counts + 1] = tostring(thread:get("sent"))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "mean_us": %.1f, "p50_us": %d, '
      .. '"p90_us": %d, "p99_us": %d, "max_us": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "exhausted": %d, '
      .. '"sent": [%s]}\n',
    summary.requests, summary.duration, latency.mean, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, e.connect, e.read, e.write,
    e.status, e.timeout, exhausted_total, table.concat(sent_counts, ", ")))
end
