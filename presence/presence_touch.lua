-- Touch: move a live session's expiry later and record now as last seen.
-- KEYS: index, sessions, expiries, last seen.
-- ARGV: user id, conn id, expires at, now, last-seen TTL ms, key grace ms.
-- Returns 1 when the session was live, 0 when unknown or expired.
local now = tonumber(ARGV[4])
local score = redis.call('ZSCORE', KEYS[3], ARGV[2])
if not score or tonumber(score) <= now then
  return 0
end
if tonumber(ARGV[3]) > tonumber(score) then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
end
settle(KEYS[1], KEYS[2], KEYS[3], ARGV[1], now, tonumber(ARGV[6]))
see(KEYS[4], now, ARGV[4], ARGV[5])
return 1
