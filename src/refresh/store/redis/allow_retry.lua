-- Gives a token a retry permit (RefreshStore::allow_retry), replacing any it
-- had; an unknown token, or one of another session, changes nothing (no key
-- is created).
-- KEYS: token. ARGV: until (Unix seconds), session id. Returns 1, or 0 if unknown.
if redis.call('HGET', KEYS[1], 'fam') ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'rty', ARGV[1])
return 1
