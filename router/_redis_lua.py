"""The Lua scripts a :class:`~._redis.RedisStore` runs on the server, and its key layout.

Each operation of the store is one script, so it is atomic: Redis runs a script
to the end before anything else. Every script reads the server's clock
(``TIME``), never a process's: the processes' loop clocks have different origins.
Times go into the scripts as durations and come back relative to the server's
now (``"%.6f"``; ``"inf"`` for never), which the caller adds to its own loop time.
A script answers with one string of space-separated fields (``-`` for none): one
bulk string is far cheaper for a client to read than an array of them.

Rates are GCRA, the Generic Cell Rate Algorithm (ITU-T I.371's virtual scheduling;
Brandur Leach, "Rate Limiting, Cells, and GCRA", 2015; the algorithm of
redis-cell): a limit of L per minute keeps one number, the theoretical arrival
time ``tat``; a request of n units goes when ``tat + n * 60/L <= now + 60`` (a
minute's burst) and moves ``tat`` on by ``n * 60/L``. That is exactly the token
bucket of ``policies._bucket`` (level = L - (tat - now) * L/60), so a refund, a
correction to real usage and a gateway's ``x-ratelimit-remaining-*`` count move
``tat`` as they move the memory store's level, and a key that expires (its
``tat`` in the past: the bucket is full) loses nothing.

Concurrency slots and half-open probe permits are leases: members of a sorted
set scored by their expiry, renewed while held, dropped once expired, so a
process that dies gives its slots back after one lease. Every key gets a TTL
each time it is written: an account lives until its buckets are full and its
Retry-After has passed, a breaker its break plus ``window + max_break``, a lease
set one lease, a failure window its length.

Keys, all of one gateway under one hash tag (a Redis Cluster puts them in one
slot, so one script may touch them all)::

    switchyard:{<namespace>:<gateway>}:acct           hash: closed, rt, tt
    switchyard:{<namespace>:<gateway>}:slots          zset: slot leases
    switchyard:{<namespace>:<gateway>}:gw:st|pr|win   the gateway's breaker: state, probes, window
    switchyard:{<namespace>:<gateway>}:m:<model>:...  a model's breaker there
"""

from __future__ import annotations

from typing import Final

__all__ = ["SCRIPTS", "breaker_keys", "prefix"]


def prefix(namespace: str, gateway: str) -> str:
    """The start of every key of ``gateway``'s account and breakers."""
    return f"switchyard:{{{namespace}:{gateway}}}"


def breaker_keys(base: str, gateway_model: str | None) -> tuple[str, str, str]:
    """A breaker's state hash, its probe leases and its failure window."""
    key = f"{base}:gw" if gateway_model is None else f"{base}:m:{gateway_model}"
    return f"{key}:st", f"{key}:pr", f"{key}:win"


_PRELUDE: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local function num(x, default)
  local v = tonumber(x)
  if v == nil then return default end
  return v
end
local function fmt(x) return string.format('%.6f', x) end
local function rel(x)
  if x == math.huge then return 'inf' end
  return fmt(x - now)
end
local function ms(seconds) return math.max(1000, math.ceil(seconds * 1000)) end
local function extend(key, milliseconds)
  if redis.call('PTTL', key) < milliseconds then redis.call('PEXPIRE', key, milliseconds) end
end
local function account(key)
  local v = redis.call('HMGET', key, 'closed', 'rt', 'tt')
  return num(v[1], 0), math.max(num(v[2], now), now), math.max(num(v[3], now), now)
end
local function save_account(key, closed, rt, tt)
  redis.call('HSET', key, 'closed', fmt(closed), 'rt', fmt(rt), 'tt', fmt(tt))
  redis.call('PEXPIRE', key, ms(math.max(closed, rt, tt) - now + 1))
end
local function slots(key, cap)
  if cap <= 0 then return 0, math.huge end
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  local first = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
  if first[2] then return redis.call('ZCARD', key), tonumber(first[2]) end
  return 0, math.huge
end
local function held(key)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
  return redis.call('ZCARD', key)
end
local function probes_of(b, key)
  if b.st ~= 'h' then return 0 end
  return held(key)
end
local function answer(fields)
  for i = 1, #fields do
    local field = tostring(fields[i])
    if field == '' then field = '-' end
    fields[i] = field
  end
  return table.concat(fields, ' ')
end
local function breaker(key)
  local v = redis.call('HMGET', key, 'st', 'until', 'ep', 'cf', 'tr')
  return {st = v[1] or 'c', untl = num(v[2], 0), ep = num(v[3], 0), cf = num(v[4], 0), tr = num(v[5], 0)}
end
local function save_breaker(key, b, keep)
  redis.call('HSET', key, 'st', b.st, 'until', fmt(b.untl), 'ep', b.ep, 'cf', b.cf, 'tr', b.tr)
  redis.call('PEXPIRE', key, ms(math.max(b.untl - now, 0) + keep))
end
"""

# KEYS: account, slots, gateway breaker, its probes, model breaker, its probes.
# ARGV: rpm, tpm, concurrency (0: none), tokens, member, lease, probes, keep.
_ADMIT: Final = """
local rpm, tpm, cap = num(ARGV[1], 0), num(ARGV[2], 0), num(ARGV[3], 0)
local tokens, member, lease = num(ARGV[4], 0), ARGV[5], num(ARGV[6], 15)
local probes, keep = num(ARGV[7], 1), num(ARGV[8], 150)
local closed, rt, tt = account(KEYS[1])
local n, earliest = slots(KEYS[2], cap)

local function gcra_wait(tat, amount, limit)
  if amount > limit then return math.huge end
  local wait = tat + amount * 60 / limit - (now + 60)
  if wait <= 1e-9 then return 0 end
  return wait
end

local function acquire(key, probe_key, b, id)
  local moved = ''
  if b.st == 'c' then return 0, moved end
  if b.st == 'o' then
    if now < b.untl then return -1, moved end
    b.st, b.ep, moved = 'h', b.ep + 1, 'half'
    redis.call('DEL', probe_key)
    save_breaker(key, b, keep)
  end
  if held(probe_key) >= probes then return -1, moved end
  redis.call('ZADD', probe_key, now + lease, id)
  extend(probe_key, ms(lease + 1))
  return 1, moved
end

local status, limit, untl = 'ok', '', now
if now < closed then
  status, limit, untl = 'defer', 'Retry-After', closed
else
  local wait, which = 0, ''
  if rpm > 0 then
    local w = gcra_wait(rt, 1, rpm)
    if w > 0 then wait, which = w, 'requests/min' end
  end
  if tpm > 0 then
    local w = gcra_wait(tt, tokens, tpm)
    if w > 0 and w >= wait then wait, which = w, 'tokens/min' end
  end
  if wait > 0 then
    status, limit, untl = 'defer', which, now + wait
  elseif cap > 0 and n >= cap then
    status, limit, untl = 'defer', 'concurrency', earliest
  end
end

local g, m = breaker(KEYS[3]), breaker(KEYS[5])
local gp, gt, mp, mt = -1, '', -1, ''
if status == 'ok' then
  gp, gt = acquire(KEYS[3], KEYS[4], g, member .. ':g')
  if gp >= 0 then
    mp, mt = acquire(KEYS[5], KEYS[6], m, member .. ':m')
    if mp < 0 and gp == 1 then redis.call('ZREM', KEYS[4], member .. ':g') end
  end
  if gp < 0 or mp < 0 then status = 'refused' end
end
if status == 'ok' then
  if rpm > 0 or tpm > 0 then
    if rpm > 0 then rt = rt + 60 / rpm end
    if tpm > 0 then tt = tt + tokens * 60 / tpm end
    save_account(KEYS[1], closed, rt, tt)
  end
  if cap > 0 then
    redis.call('ZADD', KEYS[2], now + lease, member)
    extend(KEYS[2], ms(lease + 1))
    n = n + 1
    if now + lease < earliest then earliest = now + lease end
  end
end
return answer({status, limit, rel(untl), gp, g.ep, gt, mp, m.ep, mt,
               rel(closed), rel(rt), rel(tt), n, rel(earliest),
               g.st, rel(g.untl), probes_of(g, KEYS[4]), g.ep,
               m.st, rel(m.untl), probes_of(m, KEYS[6]), m.ep})
"""

# KEYS: account, slots. ARGV: member, reserved tokens, used tokens, rpm, tpm, concurrency,
# requests left and tokens left ('' when the gateway did not say).
_SETTLE: Final = """
redis.call('ZREM', KEYS[2], ARGV[1])
local reserved, used = num(ARGV[2], 0), num(ARGV[3], 0)
local rpm, tpm, cap = num(ARGV[4], 0), num(ARGV[5], 0), num(ARGV[6], 0)
local closed, rt, tt = account(KEYS[1])
if tpm > 0 then
  local difference = reserved - used
  if difference > 0 then tt = math.max(tt - difference * 60 / tpm, now)
  else tt = tt - difference * 60 / tpm end
end
local requests_left, tokens_left = tonumber(ARGV[7]), tonumber(ARGV[8])
if requests_left and rpm > 0 then rt = math.max(rt, now + (rpm - requests_left) * 60 / rpm) end
if tokens_left and tpm > 0 then tt = math.max(tt, now + (tpm - tokens_left) * 60 / tpm) end
if rpm > 0 or tpm > 0 then save_account(KEYS[1], closed, rt, tt) end
local n, earliest = slots(KEYS[2], cap)
return answer({rel(closed), rel(rt), rel(tt), n, rel(earliest)})
"""

# KEYS: account. ARGV: seconds to close it for.
_CLOSE: Final = """
local closed, rt, tt = account(KEYS[1])
closed = math.max(closed, now + num(ARGV[1], 0))
save_account(KEYS[1], closed, rt, tt)
return answer({rel(closed)})
"""

# KEYS: gateway breaker, its probes, its window; model breaker, its probes, its window.
# ARGV: window, failure ratio, min calls, consecutive failures, base break, multiplier, max
# break, account break, keep, slow (1: the failure was slow), member; then per breaker:
# verdict (S success, F failure, N neutral, R refused account), probe (1/0), epoch, jitter draw.
_RECORD: Final = """
local window, ratio, min_calls = num(ARGV[1], 30), num(ARGV[2], 0.5), num(ARGV[3], 20)
local consecutive, base, multiplier = num(ARGV[4], 5), num(ARGV[5], 5), num(ARGV[6], 2)
local max_break, account_break, keep = num(ARGV[7], 120), num(ARGV[8], 300), num(ARGV[9], 150)
local slow, member = ARGV[10] == '1', ARGV[11]

local function counts(key)
  local horizon = math.floor(now) - math.floor(window)
  local fields = redis.call('HGETALL', key)
  local calls, failures, stale = 0, 0, {}
  for i = 1, #fields, 2 do
    local name = fields[i]
    if tonumber(string.sub(name, 2)) <= horizon then stale[#stale + 1] = name
    elseif string.sub(name, 1, 1) == 'c' then calls = calls + tonumber(fields[i + 1])
    else failures = failures + tonumber(fields[i + 1]) end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  return calls, failures
end

local function count(key, failed)
  local second = math.floor(now)
  redis.call('HINCRBY', key, 'c' .. second, 1)
  if failed then redis.call('HINCRBY', key, 'f' .. second, 1) end
  redis.call('PEXPIRE', key, ms(window + 2))
  if redis.call('HLEN', key) > 2 * (window + 3) then counts(key) end
end

local function trip(b, probe_key, draw)
  local duration = base
  if slow then
    b.tr = b.tr + 1
    duration = math.min(max_break, base * multiplier ^ (b.tr - 1))
  end
  b.untl, b.st, b.ep = now + duration * (1 + draw), 'o', b.ep + 1
  redis.call('DEL', probe_key)
end

local function finish(key, probe_key, window_key, verdict, probe, epoch, draw, id)
  local b = breaker(key)
  local before, code, n1, n2, changed = b.st, '', 0, 0, false
  local current = probe == 1 and epoch == b.ep and b.st == 'h'
  if current then redis.call('ZREM', probe_key, id) end
  if verdict == 'S' then
    if b.st == 'c' and probe == 0 then
      count(window_key, false)
      changed, b.cf = b.cf ~= 0, 0
    elseif current then
      redis.call('DEL', window_key)
      b.cf, b.tr, b.st, b.ep, code = 0, 0, 'c', b.ep + 1, 'probe_ok'
    end
  elseif verdict == 'F' then
    if current then
      trip(b, probe_key, draw)
      code = 'probe_failed'
    elseif b.st == 'c' and probe == 0 then
      count(window_key, true)
      b.cf, changed = b.cf + 1, true
      if b.cf >= consecutive then
        trip(b, probe_key, draw)
        code, n1 = 'consecutive', b.cf
      else
        local calls, failures = counts(window_key)
        if calls >= min_calls and failures / calls >= ratio then
          trip(b, probe_key, draw)
          code, n1, n2 = 'ratio', failures, calls
        end
      end
    end
  elseif verdict == 'R' then
    local untl = now + account_break
    if not (b.st == 'o' and b.untl >= untl) then
      b.untl, b.st, b.ep, code = untl, 'o', b.ep + 1, 'refused'
      redis.call('DEL', probe_key)
    end
  end
  if changed or code ~= '' then save_breaker(key, b, keep) end
  local calls, failures = 0, 0
  if b.st == 'c' then calls, failures = counts(window_key) end
  return {code, before, rel(b.untl), n1, n2, b.st, rel(b.untl), probes_of(b, probe_key), b.ep,
          calls, failures}
end

local g = finish(KEYS[1], KEYS[2], KEYS[3], ARGV[12], num(ARGV[13], 0), num(ARGV[14], 0),
                 num(ARGV[15], 0), member .. ':g')
local m = finish(KEYS[4], KEYS[5], KEYS[6], ARGV[16], num(ARGV[17], 0), num(ARGV[18], 0),
                 num(ARGV[19], 0), member .. ':m')
for i = 1, #m do g[#g + 1] = m[i] end
return answer(g)
"""

# KEYS: one lease set. ARGV: lease, the members to renew.
_RENEW: Final = """
local lease = num(ARGV[1], 15)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i]) end
extend(KEYS[1], ms(lease + 1))
return 'ok'
"""

SCRIPTS: Final = {
    name: _PRELUDE + body
    for name, body in (
        ("admit", _ADMIT),
        ("settle", _SETTLE),
        ("close", _CLOSE),
        ("record", _RECORD),
        ("renew", _RENEW),
    )
}
"""Each script's source, by name."""
