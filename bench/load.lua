-- wrk script of the benchmark: POST JSON bodies to one endpoint, report one JSON line.
--
-- wrk -s bench/load.lua <url> -- <host> <body or @file-prefix>
--   <body>          the same body on every request (the challenge endpoint);
--   @<file-prefix>  each thread sends the lines of <file-prefix>-<thread>.jsonl in order,
--                   each once (the token endpoint: every body redeems its own session); when
--                   they run out it sends an invalid body, counted as "exhausted".

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  thread:set("exhausted", 0)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local bodies = nil
local position = 0
local fixed_body = nil

function init(args)
  wrk.method = "POST"
  wrk.headers["Host"] = args[1]
  wrk.headers["Content-Type"] = "application/json"
  local source = args[2]
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
  if fixed_body ~= nil then
    return wrk.format(nil, nil, nil, fixed_body)
  end
  position = position + 1
  local body = bodies[position]
  if body == nil then
    exhausted = exhausted + 1
    body = '{"grant_type": "exhausted"}'
  end
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local exhausted_total = 0
  for _, thread in ipairs(threads) do
    exhausted_total = exhausted_total + thread:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "mean_us": %.1f, "p50_us": %d, '
      .. '"p90_us": %d, "p99_us": %d, "max_us": %d, "connect_errors": %d, "read_errors": %d, '
      .. '"write_errors": %d, "status_errors": %d, "timeouts": %d, "exhausted": %d}\n',
    summary.requests, summary.duration, latency.mean, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), latency.max, e.connect, e.read, e.write,
    e.status, e.timeout, exhausted_total))
end
