-- The whole of RefreshStore::rotate, atomically, in the session's hash slot.
-- Every key it touches is declared: the reuse branch needs the user index
-- of the session's user, which the caller learns from a first call.
-- KEYS: presented token, child token, session, session tokens, revoked
-- index, ended index, user index (of ARGV[9]).
-- ARGV: session id, presented hex, child hex, now, idle cutoff, grace cutoff
-- ('' for none), expiry margin in seconds, channel, the session's user id
-- ('' when not known yet).
-- Returns `{outcome}`, `{outcome, session id, HGETALL of the session...}`,
-- or `{'user', user id}` with nothing written when the reuse branch needs
-- that user's index and ARGV[9] is another (call again with it declared).
-- Revokes the session in one branch: reuse (marked below).
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
-- Answer as a rotation again, never as reuse, once complete (the session
-- reached the child's generation).
local c = redis.call('HMGET', KEYS[2], 'fam', 'par', 'gen')
if c[1] then
  if c[1] == fid and c[2] == ARGV[2] and tonumber(f[4]) >= tonumber(c[3]) then
    return answer('rotated')
  end
  if not (c[1] == fid and c[2] == ARGV[2]) then
    return redis.error_reply('the child token already exists')
  end
  -- A delivery that stopped half way: rotate again below.
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
    -- Reuse: revokes the session (see `revoke` in ended.lua), its user's
    -- index declared.
    if not f[5] then return redis.error_reply('corrupt session') end
    if f[5] ~= ARGV[9] then return {'user', f[5]} end
    revoke(fkey, fid, f[3], KEYS[7], KEYS[5], KEYS[6], ARGV[8])
    return answer('reused')
  end
end
-- The writes. Every key is declared, and all but the session tokens' set
-- were read above, so only that set's write can fail (a damaged key; Redis
-- refuses for want of memory only a script's first write): it goes first.
-- The presented token is marked and the session moves on last, so a retry
-- of the same token after a failure rotates normally, never looks like
-- reuse.
local gen = tostring(tgen + 1)
redis.call('SADD', KEYS[4], ARGV[3])
redis.call('HSET', KEYS[2], 'fam', fid, 'par', ARGV[2], 'gen', gen, 'cat', ARGV[4], 'st', 'a')
redis.call('EXPIREAT', KEYS[2], tonumber(f[2]) + tonumber(ARGV[7]))
if outcome == 'rotated' then redis.call('HSET', KEYS[1], 'st', 'r', 'rat', ARGV[4]) end
-- A retry permit lets one retry through.
if outcome == 'retried' then redis.call('HDEL', KEYS[1], 'rty') end
redis.call('HSET', fkey, 'gen', gen, 'lat', ARGV[4])
return answer(outcome)
