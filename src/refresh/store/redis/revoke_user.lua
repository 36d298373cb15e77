-- Revokes every session of a user; drops ids of vanished sessions.
-- KEYS: user, revoked index. ARGV: prefix.
local count = 0
for _, fid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fkey = ARGV[1] .. 'f:' .. fid
  local f = redis.call('HMGET', fkey, 'rev', 'lat')
  if not f[1] then
    redis.call('ZREM', KEYS[1], fid)
  elseif f[1] ~= '1' then
    redis.call('HSET', fkey, 'rev', '1')
    redis.call('ZADD', KEYS[2], f[2], fid)
    count = count + 1
  end
end
return count
