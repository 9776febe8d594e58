-- Helpers prepended to every script of RedisStore (store_redis.go).
--
-- Times are decimal nanoseconds since the Unix epoch, as strings: Lua
-- numbers are doubles and would round them, so they are compared as text.

-- before reports whether time a is strictly before time b.
local function before(a, b)
  local an, bn = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if an ~= bn then
    return an
  end
  if an then
    -- both negative: a < b when |a| > |b|
    a, b = string.sub(b, 2), string.sub(a, 2)
  end
  if #a ~= #b then
    return #a < #b
  end
  return a < b
end

-- extend makes key live at least ttl milliseconds (never shortens it).
local function extend(key, ttl)
  local cur = redis.call('PTTL', key)
  if cur == -2 then
    return
  end
  if cur == -1 or cur < ttl then
    redis.call('PEXPIRE', key, ttl)
  end
end

-- announce tells every process that a session (or, with sid '', every
-- session of the user) was revoked.
local function announce(channel, uid, sid)
  redis.call('PUBLISH', channel, cjson.encode({user_id = uid, session_id = sid}))
end

-- revoke marks the session hash at key revoked at time at by operation op.
local function revoke(key, at, op)
  redis.call('HSET', key, 'revoked', '1', 'revoked_at', at, 'revoke_op', op)
end
