-- RedisDedupStore.Claim.
--
-- KEYS[1]  the dedup key; its value is
--            p:<expires ms>:<token>          a pending claim
--            m:<token>:<message json>        a completed one
-- ARGV[1]  token of this claim
-- ARGV[2]  now, unix ms (the caller's clock, as the other backends)
-- ARGV[3]  expiry of this claim, unix ms
-- ARGV[4]  ttl in ms: Redis drops a pending claim after it on its own
--
-- Returns {"m", json} for a completed key, {"p"} while another claim
-- holds it, {"t"} when this token now holds it. A replay of this script
-- (go-redis resending after a lost reply) finds its own token and answers
-- {"t"} again.
local v = redis.call('GET', KEYS[1])
if v then
  local kind = string.sub(v, 1, 2)
  if kind == 'm:' then
    local sep = string.find(v, ':', 3, true)
    return {'m', string.sub(v, sep + 1)}
  end
  if kind == 'p:' then
    local sep = string.find(v, ':', 3, true)
    local exp = tonumber(string.sub(v, 3, sep - 1))
    local tok = string.sub(v, sep + 1)
    if tok == ARGV[1] then
      return {'t'}
    end
    if exp and tonumber(ARGV[2]) < exp then
      return {'p'}
    end
  end
end
redis.call('SET', KEYS[1], 'p:' .. ARGV[3] .. ':' .. ARGV[1], 'PX', ARGV[4])
return {'t'}
