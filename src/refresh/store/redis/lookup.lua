-- A token and its session in one round trip. KEYS: token. ARGV: prefix.
-- Returns `{}` or `{session id, number of token fields, token HGETALL..., session HGETALL...}`.
local fid = redis.call('HGET', KEYS[1], 'fam')
if not fid then return {} end
local t = redis.call('HGETALL', KEYS[1])
local f = redis.call('HGETALL', ARGV[1] .. 'f:' .. fid)
if #f == 0 then return {} end
local out = {fid, tostring(#t)}
for _, v in ipairs(t) do out[#out + 1] = v end
for _, v in ipairs(f) do out[#out + 1] = v end
return out
