-- RedisSeqAllocator.Next: hand out the conversation's next seq while it
-- stays within the leased block.
--
-- KEYS[1]  hash of the conversation: n (last seq handed out), hi (last
--          seq of the block leased durably, see SeqLeaser)
--
-- Returns the seq (> 0); 0 when the block is used up (the caller leases
-- the next block and raises hi); -1 when the hash is missing (Redis lost
-- it: the caller leases a fresh block and seeds the hash from it).
local cur = redis.call('HMGET', KEYS[1], 'n', 'hi')
local n, hi = tonumber(cur[1]), tonumber(cur[2])
if not n or not hi then
  return -1
end
if n < hi then
  return redis.call('HINCRBY', KEYS[1], 'n', 1)
end
return 0
