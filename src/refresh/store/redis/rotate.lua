-- The whole of RefreshStore::rotate, atomically, in the session's hash slot.
-- KEYS: presented token, child token, session.
-- ARGV: session id, presented hex, child hex, now, idle cutoff, grace cutoff
-- ('' for none), expiry margin in seconds, base (prefix and the user's tag).
-- Returns `{outcome}` or `{outcome, session id, HGETALL of the session...}`.
-- Revokes the session in one branch: reuse (marked below).
local base = ARGV[8]
local t = redis.call('HMGET', KEYS[1], 'fam', 'gen', 'st', 'rat', 'rty')
-- A token presented with another session's id is unknown.
if not t[1] or t[1] ~= ARGV[1] then return {'unknown'} end
local fid = t[1]
local fkey = KEYS[3]
local f = redis.call('HMGET', fkey, 'rev', 'exp', 'lat', 'gen', 'uid')
if not f[1] then return {'unknown'} end
if f[1] == '1' or t[3] == 'x' then return {'revoked'} end
local now = tonumber(ARGV[4])
if tonumber(f[2]) <= now or tonumber(f[3]) < tonumber(ARGV[5]) then return {'expired'} end
local function answer(outcome)
  local out = {outcome, fid}
  for _, v in ipairs(redis.call('HGETALL', fkey)) do out[#out + 1] = v end
  return out
end
-- The same rotation delivered twice (the client library resent it after a
-- lost answer or a failover): its child is already this token's child.
-- Answer as a rotation again, never as reuse.
local c = redis.call('HMGET', KEYS[2], 'fam', 'par')
if c[1] then
  if c[1] == fid and c[2] == ARGV[2] then return answer('rotated') end
  return redis.error_reply('the child token already exists')
end
local tgen = tonumber(t[2])
local outcome = 'rotated'
local predecessor = tgen + 1 == tonumber(f[4])
-- Only the newest generation rotates: an active sibling left behind by a
-- retry is stale once the session moved on, and presenting it is reuse.
if not (t[3] == 'a' and tgen == tonumber(f[4])) then
  if t[3] == 'r' and t[5] and tonumber(t[5]) >= now and predecessor then
    outcome = 'retried'
  elseif t[3] == 'r' and ARGV[6] ~= '' and t[4] and tonumber(t[4]) >= tonumber(ARGV[6]) and predecessor then
    outcome = 'grace'
  else
    -- Reuse: revokes the session.
    redis.call('HSET', fkey, 'rev', '1')
    redis.call('ZADD', base .. 'rev', f[3], fid)
    redis.call('ZREM', base .. 'u:' .. f[5], fid)
    ended(base, fid)
    return answer('reused')
  end
end
if outcome == 'rotated' then redis.call('HSET', KEYS[1], 'st', 'r', 'rat', ARGV[4]) end
-- A retry permit lets one retry through.
if outcome == 'retried' then redis.call('HDEL', KEYS[1], 'rty') end
local gen = tostring(tgen + 1)
redis.call('HSET', KEYS[2], 'fam', fid, 'par', ARGV[2], 'gen', gen, 'cat', ARGV[4], 'st', 'a')
redis.call('EXPIREAT', KEYS[2], tonumber(f[2]) + tonumber(ARGV[7]))
redis.call('SADD', base .. 'ft:' .. fid, ARGV[3])
redis.call('HSET', fkey, 'gen', gen, 'lat', ARGV[4])
return answer(outcome)
