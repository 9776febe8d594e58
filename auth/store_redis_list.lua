-- ListSessions (read only).
-- KEYS[1] user's session index
-- ARGV[1] prefix of session hash keys
-- Returns {id, {field, value, ...}, id, {...}, ...} for the sessions that
-- still exist.
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local fields = redis.call('HGETALL', ARGV[1] .. id)
  if #fields > 0 then
    table.insert(out, id)
    table.insert(out, fields)
  end
end
return out
