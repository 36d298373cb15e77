-- The sessions that ended within a window, by Redis time (read only).
-- KEYS: one tag's ended index (`P{T}ended`). ARGV: window in seconds.
-- Returns `{now, id, ended at, id, ended at, ...}` (Unix seconds).
local now = tonumber(redis.call('TIME')[1])
local out = {tostring(now)}
for _, v in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf', 'WITHSCORES')) do
  out[#out + 1] = v
end
return out
