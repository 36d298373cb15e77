-- Prepended to every script that ends sessions (create, rotate,
-- revoke_session, revoke_user). Every key these helpers touch is one of the
-- script's KEYS: Redis (and Redis Cluster, whose slot checks and `ASK`
-- redirections during a migration happen before a script runs) refuses
-- the whole script up front rather than one command half way through, and
-- Redis never rolls back the writes a failed script already made.
--
-- `ended(key, channel, id)` records that session `id` ended: the sorted set
-- `key` (`P{T}ended`, in the slot of the script's other keys) scores ids by
-- the Redis time they ended (trimmed to a day, and the whole key expires a
-- day after the last end), and the id is published on the one channel
-- `channel` (`Pended`): PUBLISH names no key, and on Redis Cluster the node
-- sends it over the cluster bus to every node, so a subscriber on any node
-- hears every tag (see events.rs).
local function ended(key, channel, id)
  local now = tonumber(redis.call('TIME')[1])
  redis.call('ZADD', key, now, id)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', '(' .. (now - 86400))
  redis.call('EXPIRE', key, 86400)
  redis.call('PUBLISH', channel, id)
end

-- `revoke(session, id, lat, user, rev, ended_key, channel)` ends session
-- `id` (key `session`, last used `lat`): announces the ending first
-- (`ended`), then marks it revoked, indexes it for purge (`rev`) and takes it
-- out of its user's index (`user`). In that order, a script that fails part
-- way has announced the ending (the logout broadcast refuses the session's
-- access tokens: it fails closed) before anything marks it revoked; and
-- calling `revoke` again on a revoked session (a retry) announces it again
-- (subscribers allow duplicates) and finishes the rest.
local function revoke(session, id, lat, user, rev, ended_key, channel)
  ended(ended_key, channel, id)
  redis.call('HSET', session, 'rev', '1')
  redis.call('ZADD', rev, lat, id)
  redis.call('ZREM', user, id)
end
