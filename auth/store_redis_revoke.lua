-- RevokeSession (idempotent: the first revocation time stays).
-- KEYS[1] session hash
-- ARGV[1] at, [2] revocation channel, [3] session id, [4] op id
-- Returns the session's fields and values, or an empty array when absent.
local skey = KEYS[1]
local s = redis.call('HMGET', skey, 'revoked', 'user')
if not s[1] then
  return {}
end
if s[1] ~= '1' then
  revoke(skey, ARGV[1], ARGV[4])
  announce(ARGV[2], s[2], ARGV[3])
end
return redis.call('HGETALL', skey)
