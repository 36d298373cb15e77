-- Deletes up to `batch` dead sessions with their tokens.
-- KEYS: expiry index, revoked index (of one tag). ARGV: base (prefix and
-- tag), now, revoked_before, batch.
-- Returns `{deleted, looked at}`.
local p = ARGV[1]
local batch = tonumber(ARGV[4])
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, batch)
for _, fid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. ARGV[3], 'LIMIT', 0, batch)) do
  ids[#ids + 1] = fid
end
local deleted = 0
for _, fid in ipairs(ids) do
  local fkey = p .. 'f:' .. fid
  local ftkey = p .. 'ft:' .. fid
  for _, hex in ipairs(redis.call('SMEMBERS', ftkey)) do redis.call('UNLINK', p .. 't:' .. hex) end
  redis.call('DEL', ftkey)
  local uid = redis.call('HGET', fkey, 'uid')
  if uid then redis.call('ZREM', p .. 'u:' .. uid, fid) end
  deleted = deleted + redis.call('DEL', fkey)
  redis.call('ZREM', KEYS[1], fid)
  redis.call('ZREM', KEYS[2], fid)
end
return {deleted, #ids}
