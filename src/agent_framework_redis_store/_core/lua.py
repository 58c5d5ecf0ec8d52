"""Every Lua script of the store. The store's Redis protocol can be read in this file.

Scripts run atomically on the server: no other client observes a state between their
commands, which is what keeps a thread within ``max_messages`` at every instant and each
batch contiguous, with any number of concurrent writers.

Each script names its KEYS and ARGV on its first lines. What several scripts share are
Lua functions with explicit parameters (``APPEND_LIBRARY``) that the script includes;
``Script.source`` is the whole text sent to Redis. Each script has one Python builder
(``append_and_trim``, ...) that lays out its KEYS and ARGV, so no call site counts positions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from redis.exceptions import NoScriptError

from .cluster import RedisClient
from .keyspace import ThreadKeys

__all__ = [
    "APPEND_AND_TRIM",
    "APPEND_LIBRARY",
    "APPEND_NEW_AND_TRIM",
    "BATCH_TOKENS_KEPT",
    "FINGERPRINTS_KEPT",
    "FINGERPRINT_WIDTH",
    "IMPORT_THREAD",
    "PRUNE_REGISTRY",
    "PURGE_THREAD",
    "REGISTRY_AFTER",
    "REPLACE_UNCHANGED",
    "REPLACE_VALUE_UNCHANGED",
    "AppendHeader",
    "Registration",
    "Script",
    "ScriptCall",
]

# How many recent batch tokens a thread remembers. A retry arrives within seconds, long
# before this many other batches could have been written to the same thread.
BATCH_TOKENS_KEPT = 256
# How many fingerprints of its newest messages a thread remembers for APPEND_NEW_AND_TRIM,
# the width of one (a kind letter and 16 hex digits, see fingerprints.py), and how many hex
# digits of the SHA1 of the newest entry mark the newest fingerprint.
FINGERPRINTS_KEPT = 256
FINGERPRINT_WIDTH = 17
NEWEST_MARK_WIDTH = 16

# The Python constants every script may read, as Lua locals.
_CONSTANTS = "\n".join(
    f"local {name} = {value}"
    for name, value in {
        "BATCH_TOKENS_KEPT": BATCH_TOKENS_KEPT,
        "FINGERPRINTS_KEPT": FINGERPRINTS_KEPT,
        "FINGERPRINT_WIDTH": FINGERPRINT_WIDTH,
        "NEWEST_MARK_WIDTH": NEWEST_MARK_WIDTH,
    }.items()
)


@dataclass(frozen=True)
class Script:
    """One Lua script: its whole source (shared functions included) and its SHA1."""

    name: str
    body: str
    uses: tuple[str, ...] = ()
    source: str = field(init=False, repr=False)
    sha: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        source = "\n".join((f"-- {self.name}", _CONSTANTS, *self.uses, self.body))
        object.__setattr__(self, "source", source)
        object.__setattr__(self, "sha", hashlib.sha1(source.encode()).hexdigest())

    async def run(self, redis: RedisClient, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """EVALSHA, loading the script (SCRIPT LOAD) when the server does not know it yet.

        EVALSHA and SCRIPT LOAD are the only scripting commands the store's ACL user needs.
        """
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]
        except NoScriptError:
            await self.load(redis)
            return await redis.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]

    async def load(self, redis: RedisClient) -> None:
        """SCRIPT LOAD on the server (on a Redis Cluster, redis-py loads it on every primary)."""
        await redis.script_load(self.source)  # type: ignore[misc]

    def queue(self, pipe: Any, keys: Sequence[str], args: Sequence[Any]) -> None:
        """Add the script to a pipeline (loaded first with ``load``; Redis Cluster pipelines run no scripts)."""
        pipe.evalsha(self.sha, len(keys), *keys, *args)


@dataclass(frozen=True, slots=True)
class ScriptCall:
    """A script with its KEYS and ARGV laid out by the script's builder."""

    script: Script
    keys: list[str]
    args: list[Any]

    async def run(self, redis: RedisClient) -> Any:
        """Run it on ``redis``."""
        return await self.script.run(redis, self.keys, self.args)


# -- appending ---------------------------------------------------------------------------

# What every append script shares: its first ARGV (the header ``AppendHeader`` lays out),
# the retry check, and what follows the append (TTLs, the batch token, the registry).
# Functions with explicit parameters; a script includes them by naming APPEND_LIBRARY.
APPEND_LIBRARY = """
-- ARGV[1..8]: max_messages, ttl_ms, token, now_us, count, register ('1'/'0'), labels, member.
-- A script's own arguments start at ARGV[FIRST_OWN_ARG].
local FIRST_OWN_ARG = 9
local function read_header()
  return {
    max_messages = tonumber(ARGV[1]), ttl_ms = tonumber(ARGV[2]), token = ARGV[3], now_us = ARGV[4],
    count = tonumber(ARGV[5]), register = ARGV[6] == '1', labels = ARGV[7], member = ARGV[8],
  }
end

-- A batch whose token was already applied (a retried append whose reply was lost).
local function already_applied(h, batches_key)
  return h.token ~= '' and redis.call('ZSCORE', batches_key, h.token)
end

-- RPUSH ARGV[first..final] in chunks (unpack() is bounded by the Lua stack); the new length.
local function push(messages_key, first, final)
  local length = nil
  for i = first, final, 1000 do
    length = redis.call('RPUSH', messages_key, unpack(ARGV, i, math.min(i + 999, final)))
  end
  return length or redis.call('LLEN', messages_key)
end

-- Keep the newest max_messages (0: all); the new length.
local function trim(messages_key, max_messages, length)
  if max_messages > 0 and length > max_messages then
    redis.call('LTRIM', messages_key, -max_messages, -1)
    return max_messages
  end
  return length
end

-- The expiry every key of the thread gets: this writer's TTL, which also slides the message
-- list's; or, from a writer without a TTL, what is left of the list's own, so that no
-- companion key (batches, fingerprints, meta) outlives the messages it describes. Then the
-- batch token is recorded (the oldest forgotten) and the registry updated: created/active
-- (milliseconds of the writer's clock, taken from now_us as a string, exact whatever Lua's
-- number formatting does), count, ttl and labels ('' keeps the stored ones) in the meta hash,
-- and, when registry_key is given (standalone Redis), the prefix's registry. Returns expire_ms.
local function finish_append(h, messages_key, batches_key, meta_key, registry_key, length)
  local expire_ms = h.ttl_ms
  if h.ttl_ms > 0 then
    redis.call('PEXPIRE', messages_key, h.ttl_ms)
  else
    expire_ms = math.max(redis.call('PTTL', messages_key), 0)
  end
  if h.token ~= '' then
    redis.call('ZADD', batches_key, h.now_us, h.token)
    redis.call('ZREMRANGEBYRANK', batches_key, 0, -(BATCH_TOKENS_KEPT + 1))
    if expire_ms > 0 then
      redis.call('PEXPIRE', batches_key, expire_ms)
    end
  end
  if h.register then
    local now_ms = string.sub(h.now_us, 1, -4)
    redis.call('HSETNX', meta_key, 'created', now_ms)
    if h.labels ~= '' then
      redis.call('HSET', meta_key, 'active', now_ms, 'count', length, 'ttl', h.ttl_ms, 'labels', h.labels)
    else
      redis.call('HSET', meta_key, 'active', now_ms, 'count', length, 'ttl', h.ttl_ms)
    end
    if expire_ms > 0 then
      redis.call('PEXPIRE', meta_key, expire_ms)
    end
    if registry_key then
      redis.call('ZADD', registry_key, now_ms, h.member)
    end
  end
  return expire_ms
end
"""


@dataclass(frozen=True, slots=True)
class Registration:
    """What an append records in the registry: the thread's labels JSON ('' keeps them) and the index to update.

    ``registry_key`` is None on Redis Cluster, where the prefix-wide registry is in another
    slot: the caller updates it beside the script (see ``ThreadStorage``).
    """

    labels: str
    registry_key: str | None


@dataclass(frozen=True, slots=True)
class AppendHeader:
    """The arguments every append script starts with (``APPEND_LIBRARY``'s ``read_header``)."""

    keys: ThreadKeys
    max_messages: int | None
    ttl_ms: int
    token: str
    now_us: int
    registration: Registration | None

    def script_keys(self, *thread_keys: str) -> list[str]:
        """``thread_keys``, then the registry where the script may touch it (always last, optional)."""
        registration = self.registration
        if registration is not None and registration.registry_key is not None:
            return [*thread_keys, registration.registry_key]
        return list(thread_keys)

    def args(self, count: int) -> list[Any]:
        """ARGV[1..8] for a batch of ``count`` messages."""
        registration = self.registration
        registered = ["0", "", ""] if registration is None else ["1", registration.labels, self.keys.thread_id]
        return [self.max_messages or 0, self.ttl_ms, self.token, self.now_us, count, *registered]


# Append a batch, trim to the newest max_messages and refresh the TTL, in one round trip.
# A batch already applied is not applied again. The first `count` payloads (the store's
# `messages=` seed) are written only if the thread does not exist yet. Returns the thread's
# length, or -1 for a batch already applied. (One integer, not a pair: redis-py parses an
# array reply noticeably slower.)
APPEND_AND_TRIM = Script(
    "append_and_trim",
    """
local messages_key, batches_key, meta_key = KEYS[1], KEYS[2], KEYS[3]
local registry_key = KEYS[4]  -- absent on Redis Cluster
local h = read_header()  -- h.count: how many of the payloads are the seed
local first = FIRST_OWN_ARG  -- the payloads: ARGV[FIRST_OWN_ARG..]

if already_applied(h, batches_key) then
  return -1
end
if h.count > 0 and redis.call('EXISTS', messages_key) == 1 then
  first = first + h.count
end
local length = trim(messages_key, h.max_messages, push(messages_key, first, #ARGV))
finish_append(h, messages_key, batches_key, meta_key, registry_key, length)
return length
""",
    uses=(APPEND_LIBRARY,),
)


def append_and_trim(header: AppendHeader, *, seed_count: int, payloads: Sequence[str]) -> ScriptCall:
    """The call of ``APPEND_AND_TRIM``: the seed's ``seed_count`` payloads first, then the batch's."""
    keys = header.keys
    return ScriptCall(
        APPEND_AND_TRIM,
        header.script_keys(keys.messages, keys.batches, keys.meta),
        [*header.args(seed_count), *payloads],
    )


# APPEND_AND_TRIM for the 1.x history provider, which is handed whole turns (and sometimes
# the whole transcript again) and must store each message once without reading the history.
# The caller sends one fingerprint per message. The thread's fingerprint list holds the
# fingerprints of its newest messages; the newest one also carries a mark of the newest
# entry of the message list, and the list is trusted only while that mark still matches
# (any other writer, e.g. APPEND_AND_TRIM, makes it stale and it restarts from this batch).
# The leading messages of the batch that repeat the newest stored ones are skipped, by the
# rule of the framework's filter_new_messages: first all known fingerprints as a run inside
# the batch, else the longest overlap of their end with the batch's start; a lone user
# message without an id never counts as a repeat. A normal turn reads only as many
# fingerprints as it brings, so the work is bounded by the batch, never by the history.
# Returns how many messages it appended.
APPEND_NEW_AND_TRIM = Script(
    "append_new_and_trim",
    """
local messages_key, batches_key, meta_key, fingerprints_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local registry_key = KEYS[5]  -- absent on Redis Cluster
local h = read_header()  -- h.count: the batch's size
local count = h.count
-- ARGV[FIRST_OWN_ARG..]: `count` fingerprints, then `count` payloads
local first_payload = FIRST_OWN_ARG + count

if already_applied(h, batches_key) then
  return 0
end

local function mark(payload)
  return string.sub(redis.sha1hex(payload), 1, NEWEST_MARK_WIDTH)
end

local known_count = 0
local newest_known = redis.call('LINDEX', fingerprints_key, -1)
if newest_known then
  local newest = redis.call('LINDEX', messages_key, -1)
  if newest and mark(newest) == string.sub(newest_known, FINGERPRINT_WIDTH + 1) then
    known_count = redis.call('LLEN', fingerprints_key)
  else
    redis.call('DEL', fingerprints_key)
  end
end
-- A batch shorter than the known list can only overlap its newest `count` entries.
local read = math.min(known_count, count)
local known = {}
if read > 0 then
  for i, entry in ipairs(redis.call('LRANGE', fingerprints_key, -read, -1)) do
    known[i] = string.sub(entry, 1, FINGERPRINT_WIDTH)
  end
end

local function incoming(i)
  return ARGV[FIRST_OWN_ARG + i - 1]
end
-- Do incoming[1..last] end with the newest `span` known fingerprints?
local function ends_with_known(last, span)
  for k = 0, span - 1 do
    if incoming(last - k) ~= known[read - k] then
      return false
    end
  end
  return not (span == 1 and string.sub(known[read], 1, 1) == 'u')
end

local skip = 0
if known_count > 0 then
  if count >= known_count then
    for last = known_count, count do
      if ends_with_known(last, known_count) then
        skip = last
        break
      end
    end
  end
  if skip == 0 then
    for last = math.min(count, known_count - 1), 1, -1 do
      if ends_with_known(last, last) then
        skip = last
        break
      end
    end
  end
end

local length = redis.call('LLEN', messages_key)
local appended = count - skip
if appended > 0 then
  local final = first_payload + count - 1
  length = trim(messages_key, h.max_messages, push(messages_key, first_payload + skip, final))
  local kept = FINGERPRINTS_KEPT
  if h.max_messages > 0 and h.max_messages < kept then
    kept = h.max_messages
  end
  local fresh = {}
  for i = math.max(skip + 1, count - kept + 1), count do
    fresh[#fresh + 1] = incoming(i)
  end
  fresh[#fresh] = fresh[#fresh] .. mark(ARGV[final])
  for i = 1, #fresh, 1000 do
    redis.call('RPUSH', fingerprints_key, unpack(fresh, i, math.min(i + 999, #fresh)))
  end
  redis.call('LTRIM', fingerprints_key, -kept, -1)
end

local expire_ms = finish_append(h, messages_key, batches_key, meta_key, registry_key, length)
if expire_ms > 0 then
  redis.call('PEXPIRE', fingerprints_key, expire_ms)
end
return appended
""",
    uses=(APPEND_LIBRARY,),
)


def append_new_and_trim(header: AppendHeader, *, fingerprints: Sequence[str], payloads: Sequence[str]) -> ScriptCall:
    """The call of ``APPEND_NEW_AND_TRIM``: one fingerprint per payload."""
    if len(fingerprints) != len(payloads):
        raise ValueError("append_new_and_trim needs one fingerprint per payload")
    keys = header.keys
    return ScriptCall(
        APPEND_NEW_AND_TRIM,
        header.script_keys(keys.messages, keys.batches, keys.meta, keys.fingerprints),
        [*header.args(len(payloads)), *fingerprints, *payloads],
    )


# -- whole threads -----------------------------------------------------------------------

# Delete a thread found in the registry if it was last active at or before the cutoff
# (or has expired meanwhile). Atomic, so a thread written to after the registry page was
# read survives. Returns 1 (deleted), 2 (already expired) or 0 (active again: kept).
PURGE_THREAD = Script(
    "purge_thread",
    """
local messages_key, meta_key = KEYS[1], KEYS[2]  -- then every other key of the thread
local cutoff_ms = tonumber(ARGV[1])

local active = redis.call('HGET', meta_key, 'active')
if not active then
  if redis.call('EXISTS', messages_key) == 0 then
    return 2
  end
elseif tonumber(active) > cutoff_ms then
  return 0
end
redis.call('DEL', unpack(KEYS))
return 1
""",
)


def purge_thread(keys: ThreadKeys, *, cutoff_ms: int) -> ScriptCall:
    """The call of ``PURGE_THREAD`` for one thread (all of its keys)."""
    return ScriptCall(PURGE_THREAD, list(keys.owned), [cutoff_ms])


# Write a whole exported thread: messages in order, metadata as exported, expiry as left
# at export. Refuses (returns 0) when the thread exists, unless `replace` is '1', which
# first deletes every key of the thread. The registry key is optional, as in APPEND_AND_TRIM.
IMPORT_THREAD = Script(
    "import_thread",
    """
local messages_key, meta_key = KEYS[1], KEYS[2]  -- then every other key of the thread
local owned = #KEYS
local registry_key = nil
if ARGV[8] == '1' then  -- the registry is the last key (absent on Redis Cluster)
  registry_key = KEYS[#KEYS]
  owned = owned - 1
end
local member = ARGV[1]
local replace = ARGV[2] == '1'
local created_ms = ARGV[3]
local active_ms = ARGV[4]
local ttl_ms = ARGV[5]
local expire_ms = tonumber(ARGV[6])
local labels = ARGV[7]
local first = 9  -- the payloads: ARGV[9..]

if not replace and redis.call('EXISTS', messages_key) == 1 then
  return 0
end
redis.call('DEL', unpack(KEYS, 1, owned))
for i = first, #ARGV, 1000 do
  redis.call('RPUSH', messages_key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('HSET', meta_key, 'created', created_ms, 'active', active_ms, 'count', #ARGV - first + 1,
  'ttl', ttl_ms, 'labels', labels)
if expire_ms > 0 then
  redis.call('PEXPIRE', messages_key, expire_ms)
  redis.call('PEXPIRE', meta_key, expire_ms)
end
if registry_key then
  redis.call('ZADD', registry_key, active_ms, member)
end
return 1
""",
)


def import_thread(
    keys: ThreadKeys,
    *,
    registry_key: str | None,
    replace: bool,
    created_ms: int,
    active_ms: int,
    ttl_ms: int,
    expire_ms: int,
    labels: str,
    payloads: Sequence[str],
) -> ScriptCall:
    """The call of ``IMPORT_THREAD``. ``registry_key`` None: the caller enters the thread (Redis Cluster)."""
    has_registry = registry_key is not None
    return ScriptCall(
        IMPORT_THREAD,
        [*keys.owned, registry_key] if registry_key is not None else list(keys.owned),
        [keys.thread_id, int(replace), created_ms, active_ms, ttl_ms, expire_ms, labels, int(has_registry), *payloads],
    )


# Rekey: replace entries the client re-encrypted, each only if it is still in the list exactly
# as the client read it. Concurrent trims shift positions, so entries are found by value, not
# by the index they had; one trimmed away or changed meanwhile is left alone, and appends
# are never touched. Equal entries are matched in list order. LSET keeps the thread's TTL.
# Returns how many were replaced.
REPLACE_UNCHANGED = Script(
    "replace_unchanged",
    """
local messages_key = KEYS[1]
-- ARGV: {entry as read, replacement} pairs, in list order

local positions = {}  -- entry -> its positions, the smallest last
local current = redis.call('LRANGE', messages_key, 0, -1)
for position = #current, 1, -1 do
  local entry = current[position]
  local found = positions[entry]
  if found == nil then
    found = {}
    positions[entry] = found
  end
  found[#found + 1] = position - 1
end

local replaced = 0
for i = 1, #ARGV, 2 do
  local found = positions[ARGV[i]]
  if found ~= nil and #found > 0 then
    redis.call('LSET', messages_key, table.remove(found), ARGV[i + 1])
    replaced = replaced + 1
  end
end
return replaced
""",
)


def replace_unchanged(messages_key: str, pairs: Sequence[tuple[str | bytes, str]]) -> ScriptCall:
    """The call of ``REPLACE_UNCHANGED``: (entry as read, replacement) pairs in list order."""
    return ScriptCall(REPLACE_UNCHANGED, [messages_key], [part for pair in pairs for part in pair])


# Replace a string key's value only if it is still the one the client read (KEEPTTL). For
# rekeying session snapshots. Returns 1 if replaced.
REPLACE_VALUE_UNCHANGED = Script(
    "replace_value_unchanged",
    """
local key = KEYS[1]
local expected, replacement = ARGV[1], ARGV[2]
if redis.call('GET', key) ~= expected then
  return 0
end
redis.call('SET', key, replacement, 'KEEPTTL')
return 1
""",
)


def replace_value_unchanged(key: str, expected: str | bytes, replacement: str) -> ScriptCall:
    """The call of ``REPLACE_VALUE_UNCHANGED``."""
    return ScriptCall(REPLACE_VALUE_UNCHANGED, [key], [expected, replacement])


# -- the registry ------------------------------------------------------------------------

# The next registry entries strictly after the position (after_score, after_member),
# newest first or oldest first: {member, score, member, score, ...}. A position, unlike an
# offset, stays put when entries are removed or rescored between pages, so none of the
# others is skipped or returned twice, however many threads share a score. The entries of
# one score sit at consecutive ranks in member order; a binary search over them finds
# where the position falls, whether or not after_member is still there. Touches one key.
REGISTRY_AFTER = Script(
    "registry_after",
    """
local registry_key = KEYS[1]
local newest_first = ARGV[1] == '1'
local after_score = ARGV[2]
local after_member = ARGV[3]
local count = tonumber(ARGV[4])

-- Byte order, as Redis orders members of equal score (Lua's '<' follows the locale).
local function precedes(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y
    end
  end
  return #a < #b
end

local first = redis.call('ZCOUNT', registry_key, '-inf', '(' .. after_score)
local last = redis.call('ZCOUNT', registry_key, '-inf', after_score)
-- The first rank of this score whose member comes after the position (oldest first), or
-- is the position's member or after it (newest first: the entry before that one is next).
while first < last do
  local middle = math.floor((first + last) / 2)
  local member = redis.call('ZRANGE', registry_key, middle, middle)[1]
  local past
  if newest_first then
    past = not precedes(member, after_member)
  else
    past = precedes(after_member, member)
  end
  if past then
    last = middle
  else
    first = middle + 1
  end
end
if not newest_first then
  return redis.call('ZRANGE', registry_key, first, first + count - 1, 'WITHSCORES')
end
local from = redis.call('ZCARD', registry_key) - first
return redis.call('ZREVRANGE', registry_key, from, from + count - 1, 'WITHSCORES')
""",
)


def registry_after(
    registry_key: str, *, newest_first: bool, after_score: int, after_member: bytes, count: int
) -> ScriptCall:
    """The call of ``REGISTRY_AFTER``."""
    return ScriptCall(REGISTRY_AFTER, [registry_key], [int(newest_first), after_score, after_member, count])


# Remove registry entries, each only if its score is still the one the caller read: a
# thread written to since then has a newer score and keeps its entry. Touches one key, so
# it runs on any Redis Cluster node.
PRUNE_REGISTRY = Script(
    "prune_registry",
    """
local registry_key = KEYS[1]
-- ARGV: (thread id, score) pairs
local removed = 0
for i = 1, #ARGV, 2 do
  local score = redis.call('ZSCORE', registry_key, ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    removed = removed + redis.call('ZREM', registry_key, ARGV[i])
  end
end
return removed
""",
)


def prune_registry(registry_key: str, entries: Sequence[tuple[bytes, int]]) -> ScriptCall:
    """The call of ``PRUNE_REGISTRY``: (member, score as read) pairs."""
    return ScriptCall(PRUNE_REGISTRY, [registry_key], [part for entry in entries for part in entry])
