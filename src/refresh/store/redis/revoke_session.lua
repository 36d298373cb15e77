-- Revokes one session and takes it out of its user's index (the same hash
-- slot: a session's keys carry its user's tag), announcing it first (see
-- `revoke` in ended.lua). A session revoked already is announced again and
-- its indexes are repaired: a retry after a failure finishes the work.
-- KEYS: session, revoked index, ended index, user index (of ARGV[2]).
-- ARGV: session id, the session's user id (as the caller read it), channel.
-- Returns {'1'}, {'0'} if unknown, or {'user', user id} with nothing
-- written when ARGV[2] is not the session's user (call again with that
-- user's index declared).
local f = redis.call('HMGET', KEYS[1], 'rev', 'lat', 'uid')
if not f[1] then return {'0'} end
if not f[3] then return redis.error_reply('corrupt session') end
if f[3] ~= ARGV[2] then return {'user', f[3]} end
-- Revokes the session (again, if it was).
revoke(KEYS[1], ARGV[1], f[2], KEYS[4], KEYS[2], KEYS[3], ARGV[3])
return {'1'}
