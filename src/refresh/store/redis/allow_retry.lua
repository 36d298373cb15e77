-- Gives a token a retry permit (RefreshStore::allow_retry), replacing any it
-- had; an unknown token changes nothing (no key is created).
-- KEYS: token. ARGV: until (Unix seconds). Returns 1, or 0 if unknown.
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'rty', ARGV[1])
return 1
