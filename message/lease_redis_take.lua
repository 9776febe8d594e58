-- KEYS[1]: the lease; ARGV[1]: the holder's token; ARGV[2]: TTL in ms.
-- Takes the lease if it is free, or extends it if this holder has it:
-- 1 held, 0 held by another.
local cur = redis.call('GET', KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
