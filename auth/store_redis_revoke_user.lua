-- RevokeUserSessions: revoke every live session of a user but one.
-- KEYS[1] user's session index
-- ARGV[1] session id to spare ('' = none), [2] at, [3] prefix of session
--     hash keys, [4] revocation channel, [5] user id, [6] op id
-- Returns the ids this call revoked. A replay of the same call (same op
-- id) returns the ids the first run revoked.
--
-- The session hashes are found through the index, so all keys of the
-- store must live on one Redis node (no Redis Cluster).
local index, except, at, sprefix = KEYS[1], ARGV[1], ARGV[2], ARGV[3]
local channel, uid, op = ARGV[4], ARGV[5], ARGV[6]
local out, fresh = {}, 0
for _, id in ipairs(redis.call('SMEMBERS', index)) do
  local skey = sprefix .. id
  local s = redis.call('HMGET', skey, 'revoked', 'revoke_op')
  if not s[1] then
    redis.call('SREM', index, id)
  elseif id ~= except then
    if s[1] ~= '1' then
      revoke(skey, at, op)
      table.insert(out, id)
      fresh = fresh + 1
    elseif s[2] == op then
      table.insert(out, id)
    end
  end
end
if fresh > 0 then
  if except == '' then
    announce(channel, uid, '')
  else
    for _, id in ipairs(out) do
      announce(channel, uid, id)
    end
  end
end
return out
