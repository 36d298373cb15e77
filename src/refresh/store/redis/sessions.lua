-- One page of a user's live sessions, oldest first (read only).
-- KEYS: user. ARGV: base (prefix and tag), now, offset, count.
-- Returns `{{looked at}, {id, HGETALL...}, ...}`: ask for the next page while
-- `looked at` is `count`.
local now = tonumber(ARGV[2])
local first = tonumber(ARGV[3])
local ids = redis.call('ZRANGE', KEYS[1], first, first + tonumber(ARGV[4]) - 1)
local out = {{tostring(#ids)}}
for _, fid in ipairs(ids) do
  local f = redis.call('HGETALL', ARGV[1] .. 'f:' .. fid)
  if #f > 0 then
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
