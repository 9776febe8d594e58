-- Expire: one batch of a shard's sweep. Takes up to limit users whose
-- earliest session expired at now, drops their expired sessions and
-- reports those left with none. The script runs atomically and takes each
-- reported user out of the index, so with several instances sweeping a
-- user is reported exactly once.
--
-- The user keys are built from base rather than passed in KEYS: they carry
-- the index's hash tag, so they live in its cluster slot.
-- KEYS: index.
-- ARGV: now, key base of the shard, limit, key grace ms.
-- Returns { users examined, { user ids left } }.
local now = tonumber(ARGV[1])
local grace = tonumber(ARGV[4])
local users = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local left = {}
for _, uid in ipairs(users) do
  local s = ARGV[2] .. 's:' .. uid
  local e = ARGV[2] .. 'e:' .. uid
  prune(s, e, ARGV[1])
  if not settle(KEYS[1], s, e, uid, now, grace) then
    left[#left + 1] = uid
  end
end
return { #users, left }
