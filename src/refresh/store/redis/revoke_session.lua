-- Revokes one session and takes it out of its user's index (the same hash
-- slot: a session's keys carry its user's tag).
-- KEYS: session, revoked index. ARGV: session id, base (prefix and tag).
-- Returns 1, or 0 if unknown.
local f = redis.call('HMGET', KEYS[1], 'rev', 'lat', 'uid')
if not f[1] then return 0 end
if f[1] ~= '1' then
  -- Revokes the session.
  redis.call('HSET', KEYS[1], 'rev', '1')
  redis.call('ZADD', KEYS[2], f[2], ARGV[1])
  redis.call('ZREM', ARGV[2] .. 'u:' .. f[3], ARGV[1])
  ended(ARGV[2], ARGV[1])
end
return 1
