-- Remove: drop one session and record now as last seen.
-- KEYS: index, sessions, expiries, last seen.
-- ARGV: user id, conn id, now, last-seen TTL ms, key grace ms.
-- Returns 1 when the session was live and no live session is left, else 0.
local now = tonumber(ARGV[3])
local score = redis.call('ZSCORE', KEYS[3], ARGV[2])
if not score then
  redis.call('HDEL', KEYS[2], ARGV[2])
  return 0
end
redis.call('ZREM', KEYS[3], ARGV[2])
redis.call('HDEL', KEYS[2], ARGV[2])
see(KEYS[4], now, ARGV[3], ARGV[4])
local live = tonumber(score) > now
-- Like the memory backend, only the removal of a live session prunes the
-- others (and so can be the transition).
if live then
  prune(KEYS[2], KEYS[3], ARGV[3])
end
local any = settle(KEYS[1], KEYS[2], KEYS[3], ARGV[1], now, tonumber(ARGV[5]))
if live and not any then
  return 1
end
return 0
