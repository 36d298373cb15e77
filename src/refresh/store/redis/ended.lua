-- Prepended to every script that ends sessions (create, rotate,
-- revoke_session, revoke_user): `ended(prefix, id)` records that session `id`
-- ended, in the same atomic step as the revocation. The sorted set
-- `{prefix}ended` scores ids by the Redis time they ended (trimmed to a day,
-- and the whole key expires a day after the last end), and the id is
-- published on the channel `{prefix}ended` (see events.rs).
local function ended(prefix, id)
  local now = tonumber(redis.call('TIME')[1])
  local key = prefix .. 'ended'
  redis.call('ZADD', key, now, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - 86400))
  redis.call('EXPIRE', key, 86400)
  redis.call('PUBLISH', key, id)
end
