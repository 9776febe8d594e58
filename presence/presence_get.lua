-- Get: the live sessions and last seen of users of one shard, read in one
-- step so a user's hash and expiries agree.
-- KEYS: sessions, expiries, last seen of each user, in threes.
-- ARGV: now.
-- Returns per user { last seen or '', session JSON... }.
local out = {}
for i = 1, #KEYS, 3 do
  local rec = { redis.call('GET', KEYS[i + 2]) or '' }
  local live = redis.call('ZRANGEBYSCORE', KEYS[i + 1], '(' .. ARGV[1], '+inf')
  for _, c in ipairs(live) do
    local v = redis.call('HGET', KEYS[i], c)
    if v then
      rec[#rec + 1] = v
    end
  end
  out[#out + 1] = rec
end
return out
