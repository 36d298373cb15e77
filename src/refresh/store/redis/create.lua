-- Stores a new session and its first token, then enforces the session cap:
-- revokes the user's oldest other sessions beyond `max sessions`. Every key
-- carries the user's tag: one hash slot.
-- The sessions the cap revokes are chosen before anything is written, and
-- their keys must be declared (KEYS[8..], their ids in ARGV[21..]);
-- otherwise the reply asks for them, with nothing written.
-- KEYS: session, token, session tokens, user, expiry index, revoked index,
-- ended index, keys of the sessions the cap may revoke...
-- ARGV: session id, user id, device flag (0|1), device, created_at,
-- last_used_at, expires_at, generation, revoked (0|1), token hex, token
-- generation, token created_at, token status, token rotated_at, expire-at,
-- max sessions, channel, auth_time, jkt flag (0|1), jkt, ids of the
-- declared session keys...
-- Returns {'need', id...} (the ids to declare, nothing written) or
-- {'created', id...}: the ids of the sessions the cap revoked, oldest
-- first. The work is bounded by the excess over the cap: one session once a
-- user is at it.
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('session or token already exists')
end
-- The user index holds only sessions that are not revoked: the oldest
-- others beyond the cap, the new session counted.
local evict = {}
if ARGV[9] ~= '1' then
  local count = redis.call('ZCARD', KEYS[4])
  if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then count = count + 1 end
  local excess = count - tonumber(ARGV[16])
  if excess > 0 then
    -- One more than the excess, so the new session can be skipped.
    for _, fid in ipairs(redis.call('ZRANGE', KEYS[4], 0, excess)) do
      if #evict == excess then break end
      if fid ~= ARGV[1] then evict[#evict + 1] = fid end
    end
  end
end
local declared = {}
for i = 21, #ARGV do declared[ARGV[i]] = KEYS[i - 13] end
for _, fid in ipairs(evict) do
  if not declared[fid] then
    local out = {'need'}
    for _, id in ipairs(evict) do out[#out + 1] = id end
    return out
  end
end
local at = tonumber(ARGV[15])
redis.call('HSET', KEYS[1], 'uid', ARGV[2], 'cat', ARGV[5], 'lat', ARGV[6], 'exp', ARGV[7],
  'gen', ARGV[8], 'rev', ARGV[9])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'dev', ARGV[4]) end
redis.call('HSET', KEYS[1], 'at', ARGV[18])
if ARGV[19] == '1' then redis.call('HSET', KEYS[1], 'jkt', ARGV[20]) end
redis.call('HSET', KEYS[2], 'fam', ARGV[1], 'gen', ARGV[11], 'cat', ARGV[12], 'st', ARGV[13])
if ARGV[14] ~= '' then redis.call('HSET', KEYS[2], 'rat', ARGV[14]) end
redis.call('SADD', KEYS[3], ARGV[10])
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1])
redis.call('EXPIREAT', KEYS[1], at)
redis.call('EXPIREAT', KEYS[2], at)
redis.call('EXPIREAT', KEYS[3], at)
local evicted = {'created'}
if ARGV[9] == '1' then return evicted end
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
if redis.call('EXPIRETIME', KEYS[4]) < at then redis.call('EXPIREAT', KEYS[4], at) end
for _, fid in ipairs(evict) do
  local fkey = declared[fid]
  local f = redis.call('HMGET', fkey, 'rev', 'lat')
  if f[1] then
    -- The cap revokes the session (again, if a failed script left it
    -- indexed: announced, not counted).
    revoke(fkey, fid, f[2], KEYS[4], KEYS[6], KEYS[7], ARGV[17])
    if f[1] ~= '1' then evicted[#evicted + 1] = fid end
  else
    -- An id whose session vanished (expired keys).
    redis.call('ZREM', KEYS[4], fid)
  end
end
return evicted
