-- Add: store a session, first dropping the user's expired ones.
-- KEYS: index, sessions, expiries, last seen.
-- ARGV: user id, conn id, session JSON, expires at, now, last-seen TTL ms,
--       key grace ms.
-- Returns 1 when the user had no live session before, else 0.
local now = tonumber(ARGV[5])
prune(KEYS[2], KEYS[3], ARGV[5])
local came = redis.call('ZCARD', KEYS[3]) == 0
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[2])
settle(KEYS[1], KEYS[2], KEYS[3], ARGV[1], now, tonumber(ARGV[7]))
see(KEYS[4], now, ARGV[5], ARGV[6])
if came then
  return 1
end
return 0
