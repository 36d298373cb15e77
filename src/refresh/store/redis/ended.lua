-- Prepended to every script that ends sessions (create, rotate,
-- revoke_session, revoke_user): `ended(base, id)` records that session `id`
-- ended, in the same atomic step as the revocation. `base` is the prefix and
-- the session's tag (`P{T}`, the scripts' base). The sorted set `P{T}ended`
-- (in the slot of the script's keys) scores ids by the Redis time they ended
-- (trimmed to a day, and the whole key expires a day after the last end),
-- and the id is published on the one channel `Pended`: PUBLISH names no key,
-- and on Redis Cluster the node sends it over the cluster bus to every node,
-- so a subscriber on any node hears every tag (see events.rs).
local function ended(base, id)
  local now = tonumber(redis.call('TIME')[1])
  local key = base .. 'ended'
  redis.call('ZADD', key, now, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - 86400))
  redis.call('EXPIRE', key, 86400)
  -- The base ends with the four characters `{T}`.
  redis.call('PUBLISH', string.sub(base, 1, -5) .. 'ended', id)
end
