-- Stores a new session and its first token.
-- KEYS: session, token, session tokens, user, expiry index.
-- ARGV: session id, user id, device flag (0|1), device, created_at,
-- last_used_at, expires_at, generation, revoked (0|1), token hex, token
-- generation, token created_at, token status, token rotated_at, expire-at,
-- auth_time, jkt flag (0|1), jkt.
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then
  return redis.error_reply('session or token already exists')
end
local at = tonumber(ARGV[15])
redis.call('HSET', KEYS[1], 'uid', ARGV[2], 'cat', ARGV[5], 'lat', ARGV[6], 'exp', ARGV[7],
  'gen', ARGV[8], 'rev', ARGV[9])
if ARGV[3] == '1' then redis.call('HSET', KEYS[1], 'dev', ARGV[4]) end
redis.call('HSET', KEYS[1], 'at', ARGV[16])
if ARGV[17] == '1' then redis.call('HSET', KEYS[1], 'jkt', ARGV[18]) end
redis.call('HSET', KEYS[2], 'fam', ARGV[1], 'gen', ARGV[11], 'cat', ARGV[12], 'st', ARGV[13])
if ARGV[14] ~= '' then redis.call('HSET', KEYS[2], 'rat', ARGV[14]) end
redis.call('SADD', KEYS[3], ARGV[10])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[5], ARGV[7], ARGV[1])
redis.call('EXPIREAT', KEYS[1], at)
redis.call('EXPIREAT', KEYS[2], at)
redis.call('EXPIREAT', KEYS[3], at)
if redis.call('EXPIRETIME', KEYS[4]) < at then redis.call('EXPIREAT', KEYS[4], at) end
return 1
