-- Revokes up to `batch` sessions of a user, oldest first, taking them out of
-- the user's index (which holds only sessions that are not revoked, so each
-- call makes progress); drops ids of vanished sessions. The user's sessions
-- share the index's hash slot (their ids carry the user's tag).
-- Every session key the batch touches must be declared (KEYS[4..], their
-- ids in ARGV[3..]); otherwise the reply asks for them, nothing written.
-- A session still indexed but revoked (left by a script that failed part
-- way) is announced again and taken out, not counted.
-- KEYS: user, revoked index, ended index, session keys...
-- ARGV: batch, channel, the ids of the declared session keys...
-- Returns {'need', id...} (the batch's ids, nothing written) or
-- {'revoked', revoked, looked at, id...} with the next batch's ids: call
-- again, declaring them, while `looked at` is `batch`.
local batch = tonumber(ARGV[1])
local ids = redis.call('ZRANGE', KEYS[1], 0, batch - 1)
local declared = {}
for i = 3, #ARGV do declared[ARGV[i]] = KEYS[i + 1] end
for _, fid in ipairs(ids) do
  if not declared[fid] then
    local out = {'need'}
    for _, id in ipairs(ids) do out[#out + 1] = id end
    return out
  end
end
local count = 0
for _, fid in ipairs(ids) do
  local fkey = declared[fid]
  local f = redis.call('HMGET', fkey, 'rev', 'lat')
  if f[1] then
    -- Revokes the session (again, if a failed script left it indexed).
    revoke(fkey, fid, f[2], KEYS[1], KEYS[2], KEYS[3], ARGV[2])
    if f[1] ~= '1' then count = count + 1 end
  else
    redis.call('ZREM', KEYS[1], fid)
  end
end
local out = {'revoked', tostring(count), tostring(#ids)}
if #ids == batch then
  for _, fid in ipairs(redis.call('ZRANGE', KEYS[1], 0, batch - 1)) do out[#out + 1] = fid end
end
return out
