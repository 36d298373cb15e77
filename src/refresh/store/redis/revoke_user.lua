-- Revokes up to `batch` sessions of a user, oldest first, taking them out of
-- the user's index (which holds only sessions that are not revoked, so each
-- call makes progress); drops ids of vanished sessions. The user's sessions
-- share the index's hash slot (their ids carry the user's tag).
-- KEYS: user, revoked index. ARGV: base (prefix and tag), batch.
-- Returns `{revoked, looked at}`: call again while `looked at` is `batch`.
local count = 0
local ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
for _, fid in ipairs(ids) do
  local fkey = ARGV[1] .. 'f:' .. fid
  local f = redis.call('HMGET', fkey, 'rev', 'lat')
  if f[1] and f[1] ~= '1' then
    -- Revokes the session.
    redis.call('HSET', fkey, 'rev', '1')
    redis.call('ZADD', KEYS[2], f[2], fid)
    ended(ARGV[1], fid)
    count = count + 1
  end
  redis.call('ZREM', KEYS[1], fid)
end
return {count, #ids}
