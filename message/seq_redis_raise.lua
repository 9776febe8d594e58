-- RedisSeqAllocator: put a freshly leased block base+1 .. hi in force.
--
-- KEYS[1]  hash of the conversation: n, hi (see seq_redis_next.lua)
-- ARGV[1]  base: the seq before the block (decimal)
-- ARGV[2]  hi: the last seq of the block (decimal)
-- ARGV[3]  "1" when the caller leased the block after seeing the hash
--          missing (it may seed the hash), "0" otherwise
--
-- The numbers are written from ARGV as the caller formatted them, never
-- from Lua numbers (which Redis would print as 1e+15 and the like).
--
-- Returns 1 when the block is in force, 0 when a higher block already is
-- (the caller's block is skipped), -1 when the hash is missing and the
-- caller may not seed (it leases a fresh block and calls again with "1").
local cur = redis.call('HMGET', KEYS[1], 'n', 'hi')
local n, hi = tonumber(cur[1]), tonumber(cur[2])
local base, newhi = tonumber(ARGV[1]), tonumber(ARGV[2])
if not n or not hi then
  if ARGV[3] ~= '1' then
    return -1
  end
  -- Leased after the loss was seen, so the block lies above every seq
  -- handed out before the loss: resume at its start.
  redis.call('HSET', KEYS[1], 'n', ARGV[1], 'hi', ARGV[2])
  return 1
end
if newhi <= hi then
  return 0
end
-- Seqs between the old hi and base belong to blocks leased by others;
-- skip them so nothing outside this block is handed out under it.
if n < base then
  redis.call('HSET', KEYS[1], 'n', ARGV[1])
end
redis.call('HSET', KEYS[1], 'hi', ARGV[2])
return 1
