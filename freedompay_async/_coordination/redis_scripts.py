"""The Lua scripts behind :class:`~freedompay_async.RedisCoordinator`: one atomic step each.

Keys of one payment share a hash tag (``{prefix}:{<id>}:...``), so a script that
touches two of them stays in one slot of a Redis Cluster. Times are the server's own
clock (``TIME``, microseconds): the one clock every worker of the fleet agrees on.
Every key carries an expiry, so whatever a worker that died leaves behind goes away by
itself: a start record an interval after the start, a lease ``lease_ttl`` after its
last renewal, a payment's notes ``note_ttl`` after the last one was written.
"""

from __future__ import annotations

__all__ = ["ACQUIRE", "FINISH", "NOTE", "RELEASE", "RENEW", "START"]

#: KEYS[1]: the payment's start record, a hash: ``s`` the latest start, ``t`` its
#: token, ``e`` when its attempt was over (if it said so), ``p`` what the start
#: before it counted from, ``i`` the interval. ARGV: the interval (microseconds), the
#: token. Returns 0 (granted: now is the latest start) or the microseconds to wait.
START = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local interval = tonumber(ARGV[1])
local last = redis.call('HMGET', KEYS[1], 's', 't', 'e', 'p')
local previous = last[1]
if last[2] == ARGV[2] then
  previous = last[4]
elseif previous and last[3] and tonumber(last[3]) > tonumber(previous) then
  previous = last[3]
end
if previous then
  local free = tonumber(previous) + interval
  if now < free then return free - now end
end
redis.call('DEL', KEYS[1])
local start = string.format('%.0f', now)
redis.call('HSET', KEYS[1], 's', start, 't', ARGV[2], 'i', ARGV[1])
if previous then redis.call('HSET', KEYS[1], 'p', previous) end
redis.call('PEXPIRE', KEYS[1], math.floor(interval / 1000) + 1)
return 0
"""

#: KEYS[1]: the payment's start record. ARGV: the token, the microseconds from when
#: its attempt asked for its start to when it was over. Sets ``e`` when the latest
#: start is still the token's (and keeps the record an interval beyond it).
FINISH = """
local last = redis.call('HMGET', KEYS[1], 's', 't', 'i')
if last[2] ~= ARGV[1] then return 0 end
local ended = tonumber(last[1]) + tonumber(ARGV[2])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
redis.call('HSET', KEYS[1], 'e', string.format('%.0f', ended))
local keep = ended + tonumber(last[3]) - now
if keep > 0 then redis.call('PEXPIRE', KEYS[1], math.floor(keep / 1000) + 1) end
return 1
"""

#: KEYS[1]: the lease (a string: the holder's token), KEYS[2]: the notes (a hash).
#: ARGV: the token, the lease's time to live (ms). Returns {1, notes as a flat list}
#: when the lease is now the token's, else {0, the holder's remaining ms}.
ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then
  return {0, redis.call('PTTL', KEYS[1])}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return {1, redis.call('HGETALL', KEYS[2])}
"""

#: KEYS[1]: the lease. ARGV: the token, the time to live (ms). 1 when renewed.
RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

#: KEYS[1]: the lease. ARGV: the token. 1 when it was the token's and is gone.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

#: KEYS[1]: the lease, KEYS[2]: the notes. ARGV: the token, the note's name, '1' to
#: set (then its value and the notes' time to live in ms) or '0' to remove it.
#: 1 when done; 0, with nothing changed, when the token does not hold the lease.
NOTE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] == '1' then
  redis.call('HSET', KEYS[2], ARGV[2], ARGV[4])
  redis.call('PEXPIRE', KEYS[2], ARGV[5])
else
  redis.call('HDEL', KEYS[2], ARGV[2])
end
return 1
"""
