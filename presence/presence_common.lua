-- Helpers prepended to every presence script (see presence_redis.go).
--
-- Per user there are three keys: a hash conn id -> session JSON, a sorted
-- set conn id -> expiry, and a last-seen string. A per-shard sorted set
-- (the index) holds user id -> earliest expiry among the user's stored
-- sessions; a user is in it exactly while it has stored sessions, so
-- whoever takes a user out of it is the one that reports the user gone.
--
-- Times are integer microseconds of the caller's clock, passed as strings.
-- They are compared with tonumber (exact below 2^53) and written back only
-- as the strings the caller or Redis gave, never through Lua's number
-- formatting.

-- prune drops the sessions in hash s / sorted set e expired at now (a
-- session expiring exactly at now is expired).
local function prune(s, e, now)
  local dead = redis.call('ZRANGEBYSCORE', e, '-inf', now)
  for _, c in ipairs(dead) do
    redis.call('HDEL', s, c)
  end
  if #dead > 0 then
    redis.call('ZREMRANGEBYSCORE', e, '-inf', now)
  end
end

-- settle brings user uid's index entry and its keys' TTL in line with the
-- sessions left in e, and reports whether any are left. The keys outlive
-- the latest expiry by grace ms, so a user nobody sweeps does not stay in
-- Redis forever; the index entry stays until a sweep reports the user.
local function settle(index, s, e, uid, now, grace)
  local first = redis.call('ZRANGE', e, 0, 0, 'WITHSCORES')
  if #first == 0 then
    redis.call('ZREM', index, uid)
    redis.call('DEL', s, e)
    return false
  end
  redis.call('ZADD', index, first[2], uid)
  local last = redis.call('ZRANGE', e, -1, -1, 'WITHSCORES')
  local ms = math.ceil((tonumber(last[2]) - now) / 1000)
  if ms < 0 then
    ms = 0
  end
  ms = ms + grace
  redis.call('PEXPIRE', s, ms)
  redis.call('PEXPIRE', e, ms)
  return true
end

-- see records nowStr as last seen unless a later time is already there,
-- and keeps the key for ttl ms from now.
local function see(key, now, nowStr, ttl)
  local old = redis.call('GET', key)
  if not old or tonumber(old) == nil or tonumber(old) < now then
    redis.call('SET', key, nowStr, 'PX', ttl)
  else
    redis.call('PEXPIRE', key, ttl)
  end
end
