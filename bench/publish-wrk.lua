-- wrk script for bench/publish-wrk.sh: every request is one POST of the same body.
--   WRK_BODY=form   ssehub, one event: topic=bench&data=<100 bytes> (urlencoded)
--   WRK_BODY=json   ssehub, one event: {"topic":"bench","data":"<100 bytes>"}
--   WRK_BODY=raw    nchan: the 100 bytes themselves (text/plain, the channel is in the path)
--   WRK_BODY=batch  ssehub, WRK_BATCH events (default 1000) as a JSON array, 10 topics
--   WRK_BODY=ndjson ssehub, the same events, one JSON object a line
-- The answer's status is left to wrk, which reports every non-2xx answer.
local payload = string.rep("x", 100)
local kind = os.getenv("WRK_BODY") or "form"
local n = tonumber(os.getenv("WRK_BATCH") or "1000")

local function event(i)
  return '{"topic":"bench' .. (i % 10) .. '","data":"' .. payload .. '"}'
end

wrk.method = "POST"
if kind == "form" then
  wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
  wrk.body = "topic=bench&data=" .. payload
elseif kind == "json" then
  wrk.headers["Content-Type"] = "application/json"
  wrk.body = '{"topic":"bench","data":"' .. payload .. '"}'
elseif kind == "raw" then
  wrk.headers["Content-Type"] = "text/plain"
  wrk.body = payload
elseif kind == "batch" or kind == "ndjson" then
  local events = {}
  for i = 1, n do
    events[i] = event(i)
  end
  if kind == "batch" then
    wrk.headers["Content-Type"] = "application/json"
    wrk.body = "[" .. table.concat(events, ",") .. "]"
  else
    wrk.headers["Content-Type"] = "application/x-ndjson"
    wrk.body = table.concat(events, "\n") .. "\n"
  end
else
  error("WRK_BODY must be form, json, raw, batch or ndjson")
end
