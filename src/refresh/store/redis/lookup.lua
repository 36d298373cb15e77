-- A token and its session in one round trip.
-- KEYS: token, session. ARGV: session id.
-- Returns `{}` (unknown, or a token of another session) or
-- `{number of token fields, token HGETALL..., session HGETALL...}`.
if redis.call('HGET', KEYS[1], 'fam') ~= ARGV[1] then return {} end
local t = redis.call('HGETALL', KEYS[1])
local f = redis.call('HGETALL', KEYS[2])
if #f == 0 then return {} end
local out = {tostring(#t)}
for _, v in ipairs(t) do out[#out + 1] = v end
for _, v in ipairs(f) do out[#out + 1] = v end
return out
