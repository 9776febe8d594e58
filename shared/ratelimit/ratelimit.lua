-- GCRA (generic cell rate algorithm), the token bucket stored as one number:
-- KEYS[1] holds the theoretical arrival time (TAT) of the next event, in
-- microseconds of Redis' own clock, so every instance shares one clock.
-- An event is allowed when, after adding one emission interval, the TAT is
-- at most burst intervals ahead of now. The key expires when the TAT is
-- reached: an absent key is a full bucket, so idle keys cost nothing.
--
-- KEYS[1]  the bucket key
-- ARGV[1]  emission interval in microseconds (1e6 / events per second)
-- ARGV[2]  burst (events allowed at once from a full bucket)
-- Returns 1 (allowed, one token taken) or 0 (refused, nothing changed).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])

local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then
  tat = now
end
local new_tat = tat + interval
if new_tat - now > interval * burst then
  return 0
end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000))
return 1
