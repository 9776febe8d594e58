-- RotateRefresh: compare the presented hash with the current one and
-- rotate, or, for a spent hash, revoke the session — in one step.
-- KEYS[1] session hash, KEYS[2] spent-hash set
-- ARGV[1] presented hash, [2] new hash, [3] now, [4] new expiry,
--     [5] key ttl (ms), [6] revocation channel, [7] session id, [8] op id,
--     [9] prefix of user index keys (the user is read from the session)
-- Returns {'ok', field, value, ...} (the rotated session) or {status}
-- with status 'invalid', 'reused', 'revoked' or 'expired'.
local skey, spent = KEYS[1], KEYS[2]
local presented, nexthash, now = ARGV[1], ARGV[2], ARGV[3]
local s = redis.call('HMGET', skey, 'hash', 'revoked', 'expires', 'user')
local cur, revoked, expires, uid = s[1], s[2], s[3], s[4]
if not cur then
  return {'invalid'}
end
if presented ~= cur then
  if redis.call('SISMEMBER', spent, presented) == 0 then
    return {'invalid'}
  end
  if revoked == '1' then
    return {'revoked'}
  end
  if cur == nexthash then
    -- This very rotation already happened (the client retried after
    -- losing the reply): answer as the first time did.
    local out = redis.call('HGETALL', skey)
    table.insert(out, 1, 'ok')
    return out
  end
  revoke(skey, now, ARGV[8])
  announce(ARGV[6], uid, ARGV[7])
  return {'reused'}
end
if revoked == '1' then
  return {'revoked'}
end
if not before(now, expires) then
  return {'expired'}
end
local ttl = tonumber(ARGV[5])
redis.call('SADD', spent, cur)
redis.call('HSET', skey, 'hash', nexthash, 'expires', ARGV[4])
redis.call('HINCRBY', skey, 'gen', 1)
redis.call('PEXPIRE', skey, ttl)
redis.call('PEXPIRE', spent, ttl)
extend(ARGV[9] .. uid, ttl)
local out = redis.call('HGETALL', skey)
table.insert(out, 1, 'ok')
return out
