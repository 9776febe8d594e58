-- RedisDedupStore.Release.
--
-- KEYS[1]  the dedup key (see dedup_redis_claim.lua)
-- ARGV[1]  token of the claim
--
-- Deletes the key when ARGV[1] holds its pending claim; does nothing for a
-- lost or completed claim. Returns 1 when deleted.
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, 2) ~= 'p:' then
  return 0
end
local sep = string.find(v, ':', 3, true)
if string.sub(v, sep + 1) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
