-- CreateSession.
-- KEYS[1] session hash, KEYS[2] spent-hash set, KEYS[3] user's session index
-- ARGV[1] session id, [2] user id, [3] device id, [4] refresh hash,
--     [5] created, [6] expires, [7] key ttl (ms), [8] op id,
--     [9] prefix of session hash keys
-- Returns 1 when created, 0 when the id is taken. A replay of the same
-- call (same op id, e.g. a client retry after a lost reply) returns 1.
local skey, spent, index = KEYS[1], KEYS[2], KEYS[3]
if redis.call('EXISTS', skey) == 1 then
  if redis.call('HGET', skey, 'create_op') == ARGV[8] then
    return 1
  end
  return 0
end
-- Keep the index to live sessions: drop ids whose hash has expired.
for _, id in ipairs(redis.call('SMEMBERS', index)) do
  if redis.call('EXISTS', ARGV[9] .. id) == 0 then
    redis.call('SREM', index, id)
  end
end
local ttl = tonumber(ARGV[7])
redis.call('DEL', spent)
redis.call('HSET', skey,
  'user', ARGV[2], 'device', ARGV[3], 'hash', ARGV[4], 'gen', '0',
  'created', ARGV[5], 'expires', ARGV[6], 'revoked', '0', 'create_op', ARGV[8])
redis.call('PEXPIRE', skey, ttl)
redis.call('SADD', index, ARGV[1])
extend(index, ttl)
return 1
