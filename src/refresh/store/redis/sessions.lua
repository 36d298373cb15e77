-- The live sessions of a user, oldest first; drops ids of vanished sessions.
-- KEYS: user. ARGV: prefix, now. Returns `{{id, HGETALL...}, ...}`.
local out = {}
local now = tonumber(ARGV[2])
for _, fid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local fkey = ARGV[1] .. 'f:' .. fid
  local f = redis.call('HGETALL', fkey)
  if #f == 0 then
    redis.call('ZREM', KEYS[1], fid)
  else
    local m = {}
    for i = 1, #f, 2 do m[f[i]] = f[i + 1] end
    if m['rev'] ~= '1' and tonumber(m['exp']) > now then
      local row = {fid}
      for _, v in ipairs(f) do row[#row + 1] = v end
      out[#out + 1] = row
    end
  end
end
return out
