-- RedisDedupStore.Complete.
--
-- KEYS[1]  the dedup key (see dedup_redis_claim.lua)
-- ARGV[1]  token of the claim
-- ARGV[2]  the message, JSON
-- ARGV[3]  how long the completed entry is kept, ms
--
-- Returns 1 when stored, 0 when the token no longer holds the claim. A
-- replay of a completion that went through answers 1 again.
local v = redis.call('GET', KEYS[1])
if not v then
  return 0
end
local kind = string.sub(v, 1, 2)
local sep = string.find(v, ':', 3, true)
if kind == 'm:' then
  if string.sub(v, 3, sep - 1) == ARGV[1] then
    return 1
  end
  return 0
end
if kind ~= 'p:' or string.sub(v, sep + 1) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], 'm:' .. ARGV[1] .. ':' .. ARGV[2], 'PX', ARGV[3])
return 1
