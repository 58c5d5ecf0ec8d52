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
from .telemetry import count_round_trips

__all__ = [
    "APPEND_AND_TRIM",
    "APPEND_LIBRARY",
    "APPEND_NEW_AND_TRIM",
    "BATCH_TOKENS_KEPT",
    "COMMIT_SUMMARY",
    "DELETE_THREAD",
    "FINGERPRINTS_KEPT",
    "FINGERPRINT_WIDTH",
    "IMPORT_THREAD",
    "INDEX_LIBRARY",
    "LABELS_LIBRARY",
    "PRUNE_REGISTRY",
    "PURGE_THREAD",
    "READ_CONTEXT",
    "REGISTRY_AFTER",
    "RELEASE_LEASE",
    "REMOVE_ENTRY",
    "REPLACE_UNCHANGED",
    "REPLACE_VALUE_UNCHANGED",
    "SET_ENTRY",
    "AppendHeader",
    "Registration",
    "Script",
    "ScriptCall",
]

# How many recent batch tokens (fixed-size digests, see fingerprints.batch_member) a thread
# remembers. A retry arrives within seconds (redis-py's own) or minutes (an application's),
# while a conversation gets a batch or two per turn; 64 others in between would take 32
# concurrent turns. At most this many, so the sorted set stays a listpack (Redis' default
# zset-max-listpack-entries is 128, zset-max-listpack-value 64 bytes).
BATCH_TOKENS_KEPT = 64
# How many fingerprints of its newest messages a thread remembers for APPEND_NEW_AND_TRIM,
# the width of one (a kind letter and 8 bytes of digest, see fingerprints.py), the width
# earlier versions wrote (the letter and 16 hex digits; still read), and how many hex digits
# of the SHA1 of the newest entry mark the newest fingerprint.
FINGERPRINTS_KEPT = 256
FINGERPRINT_WIDTH = 9
HEX_FINGERPRINT_WIDTH = 17
NEWEST_MARK_WIDTH = 16
# How far the sliding TTL of a registered thread's keys may drift before an append refreshes
# them all (see APPEND_LIBRARY's finish_append): a minute, or a TTL_SLACK_PARTS-th of the TTL
# when that is shorter. A thread's keys then expire at most that much before a full TTL after
# its last write. Batch tokens travel (and the meta hash keeps them) as hex digits of this width.
SYNC_INTERVAL_MS = 60_000
TTL_SLACK_PARTS = 100
BATCH_TOKEN_HEX = 16

# The Python constants every script may read, as Lua locals.
_CONSTANTS = "\n".join(
    f"local {name} = {value}"
    for name, value in {
        "BATCH_TOKENS_KEPT": BATCH_TOKENS_KEPT,
        "FINGERPRINTS_KEPT": FINGERPRINTS_KEPT,
        "FINGERPRINT_WIDTH": FINGERPRINT_WIDTH,
        "HEX_FINGERPRINT_WIDTH": HEX_FINGERPRINT_WIDTH,
        "NEWEST_MARK_WIDTH": NEWEST_MARK_WIDTH,
        "SYNC_INTERVAL_MS": SYNC_INTERVAL_MS,
        "TTL_SLACK_PARTS": TTL_SLACK_PARTS,
        "BATCH_TOKEN_HEX": BATCH_TOKEN_HEX,
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
        count_round_trips()
        try:
            return await redis.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]
        except NoScriptError:
            await self.load(redis)
            count_round_trips()
            return await redis.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]

    async def load(self, redis: RedisClient) -> None:
        """SCRIPT LOAD on the server (on a Redis Cluster, redis-py loads it on every primary)."""
        count_round_trips()
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


# -- labels ------------------------------------------------------------------------------

# The per-label indexes of a key prefix: for each label (``user=alice``) a sorted set of the
# ids of the threads that carry it, scored by last activity, beside the prefix's registry.
# Their names are ``Keyspace.label_index``'s; on standalone Redis the scripts that change a
# thread's registry entry keep them too (they are in other slots on a Cluster, where the
# caller updates them beside the script, as it does the registry).
LABELS_LIBRARY = """
-- urllib.parse.quote(s, safe=''): RFC 3986 unreserved characters stay, every other byte is %XX.
local function quote(s)
  return (string.gsub(s, '[^%w%-%._~]', function(c) return string.format('%%%02X', string.byte(c)) end))
end

-- The key prefix of a prefix's registry key ('<prefix>:registry').
local function prefix_of(registry_key)
  return string.sub(registry_key, 1, -(#':registry' + 1))
end

-- The label index keys of a thread's labels (the meta hash's JSON; '' or nil: none). An append
-- asks for the same ones to check them and to write them: worked out once per call (not to be
-- changed by the caller).
local label_keys_of = {}
local function label_keys(prefix, labels)
  if not labels or labels == '' then
    return {}
  end
  local memo = prefix .. '\0' .. labels
  local keys = label_keys_of[memo]
  if keys then
    return keys
  end
  keys = {}
  local ok, decoded = pcall(cjson.decode, labels)
  if ok and type(decoded) == 'table' then
    for name, value in pairs(decoded) do
      keys[#keys + 1] = prefix .. ':label:' .. quote(name) .. '=' .. quote(tostring(value))
    end
  end
  label_keys_of[memo] = keys
  return keys
end

-- Index `member` by `score` under its labels `new`, out of the indexes of `old` it left.
local function index_labels(prefix, member, old, new, score)
  local keys = label_keys(prefix, new)
  if old and old ~= new then
    local kept = {}
    for _, key in ipairs(keys) do
      kept[key] = true
    end
    for _, key in ipairs(label_keys(prefix, old)) do
      if not kept[key] then
        redis.call('ZREM', key, member)
      end
    end
  end
  for _, key in ipairs(keys) do
    redis.call('ZADD', key, score, member)
  end
end

-- After a thread entered the registry: a registry that was empty until now belongs to a prefix
-- whose every thread is written with its labels indexed, so the label indexes are complete
-- (a prefix with threads from before the label indexes needs a reindex instead).
local function mark_labels_complete(registry_key, added)
  if added == 1 and redis.call('ZCARD', registry_key) == 1 then
    redis.call('SET', prefix_of(registry_key) .. ':label-index', 'complete')
  end
end

-- An empty registry leaves nothing of the prefix behind (a new first thread marks it again).
local function forget_empty_registry(registry_key)
  if redis.call('EXISTS', registry_key) == 0 then
    redis.call('DEL', prefix_of(registry_key) .. ':label-index')
  end
end

-- Take `member` out of the indexes of its labels.
local function unindex_labels(prefix, member, labels)
  for _, key in ipairs(label_keys(prefix, labels)) do
    redis.call('ZREM', key, member)
  end
end
"""

# -- the thread's keys, as the scripts read them ------------------------------------------

# What the scripts that write a thread or read its window share: reading a key that is about
# to be written with a check of its type, and reading the index (see APPEND_LIBRARY) as the
# hint it is.
#
# Redis keeps the writes a script made before an error, so a key of the wrong type met by a
# write midway (a meta hash SET to a string, a registry that is a list) would leave half an
# append applied. The scripts read every key they write before their first write, with a
# command the store's ACL user has anyway, and end on one of another type with an error
# holding ``WRONGTYPE_KEY <type> <key in hex>`` (errors.translate_redis_errors names the key).
INDEX_LIBRARY = """
-- A key's bytes in hex: an error reply carries any key intact (errors.translate_redis_errors decodes it).
local function hex(key)
  return (string.gsub(key, '.', function(c) return string.format('%02x', string.byte(c)) end))
end

local function checked(expected, command, key, ...)
  local reply = redis.pcall(command, key, ...)
  if type(reply) == 'table' and reply.err then
    if string.find(reply.err, 'WRONGTYPE', 1, true) then
      error('WRONGTYPE_KEY ' .. expected .. ' ' .. hex(key))  -- a string: Redis 6 and 7 both pass it on
    end
    return redis.call(command, key, ...)  -- any other error (NOPERM, ...) as Redis raises it
  end
  return reply
end

-- A meta hash field the script computes with (first, boundary): its integer (0 when absent), or an
-- error holding ``CORRUPT_META <field> <key in hex>`` before anything is written. Only what HINCRBY
-- also takes, and Lua's numbers hold exactly: tonumber alone accepts '1e3', '0x10', ' 5' or 40
-- digits, on which a trim's HINCRBY fails after the append's writes.
local function integer_field(meta_key, field, value)
  if not value then
    return 0
  end
  if #value > 15 or not (value == '0' or string.match(value, '^[1-9]%d*$')) then
    error('CORRUPT_META ' .. field .. ' ' .. hex(meta_key))
  end
  return tonumber(value)
end

-- The mark of a message (the newest one is marked in the index and the fingerprints). A script
-- checks the same newest message against both: hashed once per call.
local marks = {}
local function mark(payload)
  local digest = marks[payload]
  if not digest then
    digest = string.sub(redis.sha1hex(payload), 1, NEWEST_MARK_WIDTH)
    marks[payload] = digest
  end
  return digest
end

-- An index entry's value: tokens, negative for a message that continues an earlier group; nil
-- for anything else (a damaged index).
local function entry_value(entry)
  return tonumber(string.match(entry, '^(-?%d+)$') or string.match(entry, '^(-?%d+)|%x+$'))
end

-- The value of the index's newest entry `newest` if it marks `message`, the list's newest.
local function marked_value(newest, message)
  local value, newest_mark = string.match(newest, '^(-?%d+)|(%x+)$')
  if value and message and newest_mark == mark(message) then
    return value
  end
  return nil
end

-- Can the stored message at `position` continue a group, as the index says? Its body tells when
-- the script can read it (JSON, neither sealed nor compressed): only one with a call, a result or
-- an approval can (groups.may_link). Otherwise the index is taken at its word.
local function may_continue(messages_key, position)
  local body = redis.call('LINDEX', messages_key, position)
  if not body or string.byte(body, 1) ~= 123 then  -- '{'
    return true
  end
  return string.find(body, '_result"', 1, true) ~= nil or string.find(body, '_call"', 1, true) ~= nil
    or string.find(body, 'approval_re', 1, true) ~= nil
end
"""

# -- appending ---------------------------------------------------------------------------

# What every append script shares: its first ARGV (the header ``AppendHeader`` lays out),
# the retry check, the type checks, the thread's index, group-safe trimming, and what follows
# the append (TTLs, the batch token, the registry). Functions with explicit parameters; a
# script includes them by naming APPEND_LIBRARY (after LABELS_LIBRARY and INDEX_LIBRARY).
#
# The index list ({thread}:index) holds one entry per message, aligned with the message
# list from its newest end: the message's token count, negative when a cut just before it
# would split a tool-call group (see groups.py). It may cover only the newest messages
# (history written before it existed). Its newest entry carries "|" and a mark of the
# newest message (the caller marks the last entry it sends: ``newest_mark``); a writer that
# appended without it (an older version of this library) leaves the mark stale, and the
# index is then dropped and restarts with the next batch. It is a hint, never trusted with
# messages: an index longer than the list, or whose newest entry is malformed, is dropped;
# the entries a trim reads are checked as it reads them (see trim).
APPEND_LIBRARY = """
-- ARGV[1..8]: max_messages, ttl_ms, token (hex), now_us, count, register ('1'/'0'), labels, member.
-- A script's own arguments start at ARGV[FIRST_OWN_ARG].
local FIRST_OWN_ARG = 9
local function read_header()
  local ttl_ms = tonumber(ARGV[2])
  local interval = SYNC_INTERVAL_MS
  if ttl_ms > 0 and ttl_ms < interval * TTL_SLACK_PARTS then
    interval = math.floor(ttl_ms / TTL_SLACK_PARTS)
  end
  return {
    max_messages = tonumber(ARGV[1]), ttl_ms = ttl_ms, ttl_arg = ARGV[2], token = ARGV[3], now_us = ARGV[4],
    now_ms = string.sub(ARGV[4], 1, -4), count = tonumber(ARGV[5]), register = ARGV[6] == '1', labels = ARGV[7],
    member = ARGV[8], interval = interval,
  }
end

-- Is `entry` one of the `width`-wide entries `joined` holds end to end? (A plain search, taken
-- only where it starts an entry.)
local function holds_entry(joined, entry, width)
  local at = string.find(joined, entry, 1, true)
  while at and (at - 1) % width ~= 0 do
    at = string.find(joined, entry, at + 1, true)
  end
  return at ~= nil
end

-- Bytes from hex digits (batch tokens travel as hex; the older sorted set holds their bytes).
local function unhex(digits)
  return (string.gsub(digits, '%x%x', function(pair) return string.char(tonumber(pair, 16)) end))
end

-- Before the first write: what the meta hash holds. h.resync: the meta hash's 'ttl', 'labels'
-- and 'created' are to be written (always for an unregistered thread, which writes none of
-- them: its TTLs are then refreshed on every append, as before). Returns the stored labels.
local function read_meta(h, meta_key)
  local stored = checked('hash', 'HMGET', meta_key, 'labels', 'first', 'ttl', 'created', 'batches',
    'fingerprint_width')
  local stored_labels = stored[1]
  integer_field(meta_key, 'first', stored[2])  -- a trim adds to it (HINCRBY) after the writes
  h.created = stored[4]
  h.tokens = stored[5]
  h.fingerprints_clean = stored[6] == tostring(FINGERPRINT_WIDTH)
  if h.tokens and #h.tokens % BATCH_TOKEN_HEX ~= 0 then  -- damaged: no token in it can be found again
    h.tokens = false
  end
  h.kept_labels = h.labels ~= '' and h.labels or stored_labels  -- '' keeps the stored ones
  h.resync = not h.register or not h.created or stored[3] ~= h.ttl_arg or h.kept_labels ~= stored_labels
  return stored_labels
end

-- A batch whose token was already applied (a retried append whose reply was lost). A registered
-- thread keeps its recent tokens in the meta hash ('batches': hex tokens, newest last); an
-- unregistered one in the batches sorted set.
local function already_applied(h, batches_key)
  if h.token == '' then
    return false
  end
  if h.register then
    return h.tokens and holds_entry(h.tokens, h.token, BATCH_TOKEN_HEX) or false  -- (a missing field reads as false)
  end
  return checked('zset', 'ZSCORE', batches_key, unhex(h.token)) and true or false
end

-- The registry and every label index the append touches must be of their types. (They are
-- written on every append: listings order threads by their last activity, to the millisecond.)
local function check_registry(h, registry_key, stored_labels)
  if registry_key and h.register then
    checked('zset', 'ZSCORE', registry_key, h.member)
    local prefix = prefix_of(registry_key)
    for _, key in ipairs(label_keys(prefix, h.kept_labels)) do
      checked('zset', 'ZSCORE', key, h.member)
    end
    if stored_labels and stored_labels ~= h.kept_labels then  -- relabelled: it leaves these
      for _, key in ipairs(label_keys(prefix, stored_labels)) do
        checked('zset', 'ZSCORE', key, h.member)
      end
    end
  end
end

-- The newest stored message, read once per call: before the script's first write, which changes it.
local newest_of = {}
local function newest_message(messages_key)
  local newest = newest_of[messages_key]
  if newest == nil then
    newest = redis.call('LINDEX', messages_key, -1)
    newest_of[messages_key] = newest
  end
  return newest
end

-- The value of the index's newest entry if the index still describes the message list (that
-- entry marks the newest message); otherwise the index is deleted and nil returned. Before the writes.
local function checked_index(messages_key, index_key)
  local newest = checked('list', 'LINDEX', index_key, -1)
  if not newest then
    return nil
  end
  local value = marked_value(newest, newest_message(messages_key))
  if not value then
    redis.call('DEL', index_key)
  end
  return value
end

-- RPUSH values[first..final] in chunks (unpack() is bounded by the Lua stack); the new length.
-- A list this call creates has no TTL yet: h.created_key tells finish_append to set them all.
local function push(key, values, first, final, h)
  local length = nil
  for i = first, final, 1000 do
    length = redis.call('RPUSH', key, unpack(values, i, math.min(i + 999, final)))
  end
  if h and length == final - first + 1 then
    h.created_key = true
  end
  return length or redis.call('LLEN', key)
end

-- Index the messages just pushed (the list is now `length` long): values[first..final] hold
-- their entries, the newest already marked; the previous newest entry (its value `newest`, if
-- any) loses its mark. Returns how many of the newest messages the index covers. An index
-- longer than the list does not describe it: only the new entries stay.
local function push_index(index_key, newest, values, first, final, length, h)
  if newest then
    redis.call('LSET', index_key, -1, newest)
  end
  local covered = push(index_key, values, first, final, h)
  if covered > length then
    covered = final - first + 1
    redis.call('LTRIM', index_key, -covered, -1)
  end
  return covered
end

-- Keep at most max_messages (0: all), cutting only where a group starts: the first kept
-- message may not continue a group whose start would be dropped, so the thread may keep
-- fewer, never more (none, when its newest group alone is longer). `covered`: how many of
-- the newest messages the index covers; the others count as group starts. `batch` holds the
-- entries of the messages just pushed (batch.values[batch.first..], the newest batch.count
-- messages): the caller's own word, read from the arguments. The stored entries are a hint:
-- one that is not an entry, or says a message continues a group where the message's body
-- says it cannot (may_continue), ends the walk there, so the cut never goes further than
-- max_messages and the groups the list really holds require, and the stored part of the
-- index goes. The meta hash's 'first' counts every message ever trimmed (absolute positions,
-- for summaries). Returns the length.
local function trim(messages_key, index_key, meta_key, max_messages, length, covered, batch)
  if max_messages <= 0 or length <= max_messages then
    return length
  end
  local offset = length - covered  -- the list position of the index's first entry
  local batch_start = length - batch.count
  local cut = length - max_messages
  while cut < length and cut >= offset do
    local value
    if cut >= batch_start then
      value = entry_value(batch.values[batch.first + cut - batch_start]) or 0
    else
      value = entry_value(redis.call('LINDEX', index_key, cut - offset))
      if value == nil or (value < 0 and not may_continue(messages_key, cut)) then
        redis.call('LTRIM', index_key, -batch.count, -1)
        offset = batch_start
        value = 0
      end
    end
    if value >= 0 then
      break
    end
    cut = cut + 1
  end
  -- cut == length: the newest group alone is longer than max_messages. It cannot be kept whole
  -- within the limit, and a cut inside it would orphan its results: it goes, as a group.
  redis.call('LTRIM', messages_key, cut, -1)
  redis.call('LTRIM', index_key, math.max(cut - offset, 0), -1)
  redis.call('HINCRBY', meta_key, 'first', cut)
  return length - cut
end

-- Record an applied batch's token in the batches sorted set (unregistered threads): the set
-- keeps the newest BATCH_TOKENS_KEPT, trimmed before the add so that it never holds more and
-- stays a listpack. A set that was larger was written by an earlier version (raw tokens, which
-- this version's digests never match, in a skiplist, which removals do not shrink): it is
-- dropped and restarts compact.
local function remember_batch(batches_key, token, now_us)
  if redis.call('ZREMRANGEBYRANK', batches_key, 0, -BATCH_TOKENS_KEPT) > 1 then
    redis.call('DEL', batches_key)
  end
  redis.call('ZADD', batches_key, now_us, unhex(token))
end

-- The meta hash's tokens after this batch's (hex, the newest BATCH_TOKENS_KEPT, newest last; a
-- damaged field, which read_meta dropped, starts again from this one).
local function remembered_tokens(h)
  local tokens = (h.tokens or '') .. h.token
  local keep = BATCH_TOKENS_KEPT * BATCH_TOKEN_HEX
  if #tokens > keep then
    tokens = string.sub(tokens, -keep)
  end
  return tokens
end

-- After the writes: the batch token, the meta hash, the registry and the label indexes, then
-- the TTLs. Meta hash: active (milliseconds of the writer's clock, taken from now_us as a
-- string, exact whatever Lua's number formatting does), count and the recent batch tokens;
-- ttl, labels ('' keeps the stored ones, `stored_labels` as read_meta read them) and created
-- when they change (h.resync). With registry_key (standalone Redis): the prefix's registry and
-- its label indexes.
-- TTLs: every key of the thread gets this writer's TTL, which also slides the message list's;
-- or, from a writer without a TTL, what is left of the list's own, so that no companion key
-- (batches, index, meta, ...) outlives the messages it describes. They are refreshed together
-- once the list's has drifted by h.interval (a minute, or a hundredth of the TTL when that is
-- shorter), and whenever this call created a key (h.created_key), which has none yet.
local function finish_append(h, messages_key, batches_key, meta_key, registry_key, stored_labels, length, companions)
  local now_ms = h.now_ms
  if h.fingerprints_unchecked then  -- registered or not: the field may be from when it was
    redis.call('HDEL', meta_key, 'fingerprint_width')
  end
  if h.register then
    local fields = {'active', now_ms, 'count', length}
    if h.token ~= '' then
      fields[#fields + 1] = 'batches'
      fields[#fields + 1] = remembered_tokens(h)
    end
    if h.fingerprints_checked and not h.fingerprints_clean then
      fields[#fields + 1] = 'fingerprint_width'
      fields[#fields + 1] = FINGERPRINT_WIDTH
    end
    if h.resync then
      fields[#fields + 1] = 'ttl'
      fields[#fields + 1] = h.ttl_arg
      if h.labels ~= '' then
        fields[#fields + 1] = 'labels'
        fields[#fields + 1] = h.labels
      end
      if not h.created then
        fields[#fields + 1] = 'created'
        fields[#fields + 1] = now_ms
      end
    end
    redis.call('HSET', meta_key, unpack(fields))
    if registry_key then
      mark_labels_complete(registry_key, redis.call('ZADD', registry_key, now_ms, h.member))
      index_labels(prefix_of(registry_key), h.member, stored_labels, h.kept_labels, now_ms)
    end
  elseif h.token ~= '' then
    remember_batch(batches_key, h.token, h.now_us)
  end
  local expire_ms = h.ttl_ms
  if h.ttl_ms > 0 then
    if not (h.resync or h.created_key) and redis.call('PTTL', messages_key) > h.ttl_ms - h.interval then
      return
    end
    redis.call('PEXPIRE', messages_key, h.ttl_ms)
  elseif h.resync or h.created_key then
    expire_ms = math.max(redis.call('PTTL', messages_key), 0)
  else
    return
  end
  if expire_ms > 0 then
    local done = {}  -- a registered thread names its meta hash twice (see AppendHeader.script_keys)
    for _, key in ipairs(companions) do
      if not done[key] then
        done[key] = true
        redis.call('PEXPIRE', key, expire_ms)
      end
    end
  end
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
    token: str  # fingerprints.batch_member of the idempotency key, in hex; "" for none
    now_us: int
    registration: Registration | None

    def script_keys(self, *own: str) -> list[str]:
        """The thread's keys every append script takes, then ``own``, then the registry where the
        script may touch it (always last, optional).

        The second is the batches set of an unregistered thread; a registered one keeps its batch
        tokens in the meta hash and names that again instead. A script's keys must all exist or
        all be missing while a Redis Cluster migrates their slot (else it answers TRYAGAIN until
        the migration ends), and a set that is never written would never exist.
        """
        keys = self.keys
        registration = self.registration
        batches = keys.batches if registration is None else keys.meta
        thread = [keys.messages, batches, keys.meta, keys.index, *own]
        if registration is not None and registration.registry_key is not None:
            thread.append(registration.registry_key)
        return thread

    def args(self, count: int) -> list[Any]:
        """ARGV[1..8] for a batch of ``count`` messages."""
        registration = self.registration
        registered = ["0", "", ""] if registration is None else ["1", registration.labels, self.keys.thread_id]
        return [self.max_messages or 0, self.ttl_ms, self.token, self.now_us, count, *registered]


def newest_mark(payload: str) -> str:
    """The mark of the newest message the index's newest entry carries (what Lua's ``mark`` computes)."""
    return hashlib.sha1(payload.encode("utf-8", "surrogatepass")).hexdigest()[:NEWEST_MARK_WIDTH]


def _marked(index: Sequence[str], payloads: Sequence[str]) -> list[str]:
    if not index:
        return []
    return [*index[:-1], f"{index[-1]}|{newest_mark(payloads[-1])}"]


# Append a batch, trim to the newest max_messages (group-safe) and refresh the TTL, in one
# round trip. A batch already applied is not applied again. The first `count` payloads (the
# store's `messages=` seed) are written only if the thread does not exist yet. Returns the
# thread's length, or -1 for a batch already applied. (One integer, not a pair: redis-py
# parses an array reply noticeably slower.)
APPEND_AND_TRIM = Script(
    "append_and_trim",
    """
local messages_key, batches_key, meta_key, index_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local registry_key = KEYS[5]  -- absent on Redis Cluster
local h = read_header()  -- h.count: how many of the payloads are the seed
-- ARGV[FIRST_OWN_ARG..]: n payloads, then their n index entries
local n = (#ARGV - FIRST_OWN_ARG + 1) / 2
local first = FIRST_OWN_ARG

local stored_labels = read_meta(h, meta_key)
if already_applied(h, batches_key) then
  return -1
end
check_registry(h, registry_key, stored_labels)
if h.count > 0 and redis.call('EXISTS', messages_key) == 1 then
  first = first + h.count
end
local final = FIRST_OWN_ARG + n - 1
local length
if first <= final then
  local newest = checked_index(messages_key, index_key)
  length = push(messages_key, ARGV, first, final, h)
  local covered = push_index(index_key, newest, ARGV, first + n, final + n, length, h)
  length = trim(messages_key, index_key, meta_key, h.max_messages, length, covered,
    {values = ARGV, first = first + n, count = final - first + 1})
else
  length = redis.call('LLEN', messages_key)
end
finish_append(h, messages_key, batches_key, meta_key, registry_key, stored_labels, length,
  {batches_key, meta_key, index_key})
return length
""",
    uses=(LABELS_LIBRARY, INDEX_LIBRARY, APPEND_LIBRARY),
)


def append_and_trim(
    header: AppendHeader, *, seed_count: int, payloads: Sequence[str], index: Sequence[str]
) -> ScriptCall:
    """The call of ``APPEND_AND_TRIM``: the seed's ``seed_count`` payloads first, then the batch's;
    one index entry per payload (``groups.index_entry``)."""
    if len(index) != len(payloads):
        raise ValueError("append_and_trim needs one index entry per payload")
    return ScriptCall(
        APPEND_AND_TRIM, header.script_keys(), [*header.args(seed_count), *payloads, *_marked(index, payloads)]
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
# message without an id never counts as a repeat. Then a message with an id is skipped
# wherever it is in the batch when the id is among the known fingerprints, or earlier in the
# batch: however concurrent writers interleave their replays, an id is stored once while it
# is remembered. A batch without ids reads only as many fingerprints as it brings; one with
# ids reads them all (at most FINGERPRINTS_KEPT, or max_messages): the work is bounded by
# the batch and that bound, never by the history. Returns how many messages it appended.
APPEND_NEW_AND_TRIM = Script(
    "append_new_and_trim",
    """
local messages_key, batches_key, meta_key, index_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local fingerprints_key = KEYS[5]
local registry_key = KEYS[6]  -- absent on Redis Cluster
local h = read_header()  -- h.count: the batch's size
local count = h.count
-- ARGV[FIRST_OWN_ARG..]: `count` fingerprints, then `count` payloads, then their `count` index
-- entries, then any number of alternate sets of `count` fingerprints: the same messages under
-- the digest keys of an encryption's other keys (fingerprints stored before a key rotation).
local first_payload = FIRST_OWN_ARG + count
local first_entry = first_payload + count
local alternates = math.floor((#ARGV - first_entry - count + 1) / count)
local ID = 105  -- string.byte('i'): the kind of a fingerprint made from a message id

local stored_labels = read_meta(h, meta_key)
if already_applied(h, batches_key) then
  return 0
end
check_registry(h, registry_key, stored_labels)
local newest_known = checked('list', 'LINDEX', fingerprints_key, -1)
local length = checked('list', 'LLEN', messages_key)

local known_count = 0
if newest_known then
  local newest = newest_message(messages_key)
  if newest and mark(newest) == string.sub(newest_known, -NEWEST_MARK_WIDTH) then
    known_count = redis.call('LLEN', fingerprints_key)
  else
    redis.call('DEL', fingerprints_key)
  end
end
-- A stored fingerprint, without the mark the newest carries (and an earlier version may
-- have left on others). Earlier versions wrote the digest as hex: read as its bytes.
local function stored_fingerprint(entry)
  if #entry == HEX_FINGERPRINT_WIDTH or #entry == HEX_FINGERPRINT_WIDTH + NEWEST_MARK_WIDTH then
    return string.sub(entry, 1, 1) .. unhex(string.sub(entry, 2, HEX_FINGERPRINT_WIDTH))
  end
  return string.sub(entry, 1, FINGERPRINT_WIDTH)
end
local has_ids = false
for i = FIRST_OWN_ARG, first_payload - 1 do
  if string.byte(ARGV[i], 1) == ID then
    has_ids = true
    break
  end
end
-- Only the newest `count` known fingerprints become strings of their own: the overlap compares
-- at most those. The ids among the older ones (looked up only for a batch with ids) are looked up
-- where they are stored, with LPOS, once the meta hash says that every entry has this version's
-- width (h.fingerprints_clean: no hex digest or stray mark of an earlier version, which an exact
-- match would miss), and for at most LPOS_LOOKUPS ids a call: past that (a long batch with ids, a
-- replay that does not continue the thread), reading them once costs less. Read, they are joined
-- into one string and searched (a set of them when they are not all of this width); a list found
-- clean, or started by this batch, gets that said (h.fingerprints_checked). A writer still on 0.1
-- (hex digests, in a rolling upgrade) rewrites the list without knowing of the meta field: its
-- newest entry, which every call reads, is then not of this width (not `clean`), and the field
-- goes (h.fingerprints_unchecked).
local LPOS_LOOKUPS = 4
local read = math.min(known_count, count)
local older = has_ids and known_count - read or 0
local known = {}
local known_ids = {}  -- ids met in this batch, the newest known ones, and the older ones read as a set
local clean = true
if read > 0 then
  local entries = redis.call('LRANGE', fingerprints_key, -read, -1)
  for i = 1, read do
    known[i] = stored_fingerprint(entries[i])
    clean = clean and #entries[i] == FINGERPRINT_WIDTH + (i == read and NEWEST_MARK_WIDTH or 0)
    if string.byte(known[i], 1) == ID then
      known_ids[known[i]] = true
    end
  end
end
local joined = nil  -- the older entries end to end, once read (nil when read as a set)
local older_read = false
local lookups = 0
local function read_older()
  local entries = redis.call('LRANGE', fingerprints_key, 0, older - 1)
  older_read = true
  joined = table.concat(entries)
  if #joined ~= older * FINGERPRINT_WIDTH then
    joined = nil
    clean = false
    for _, entry in ipairs(entries) do
      local fingerprint = stored_fingerprint(entry)
      if string.byte(fingerprint, 1) == ID then
        known_ids[fingerprint] = true
      end
    end
  end
end
if older > 0 and not (h.fingerprints_clean and clean) then
  read_older()
end
h.fingerprints_checked = known_count == 0 or (clean and read + (older_read and older or 0) == known_count)
local function known_id(fingerprint)
  if known_ids[fingerprint] then
    return true
  elseif older == 0 then
    return false
  end
  if not older_read and lookups == LPOS_LOOKUPS then
    read_older()
  end
  if older_read then
    return joined ~= nil and holds_entry(joined, fingerprint, FINGERPRINT_WIDTH)
  end
  lookups = lookups + 1
  return redis.call('LPOS', fingerprints_key, fingerprint, 'MAXLEN', older) ~= false
end

local base = FIRST_OWN_ARG  -- where the set of fingerprints compared starts
local function incoming(i)
  return ARGV[base + i - 1]
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

local function overlap()
  if count >= known_count then
    for last = known_count, count do
      if ends_with_known(last, known_count) then
        return last
      end
    end
  end
  for last = math.min(count, known_count - 1), 1, -1 do
    if ends_with_known(last, last) then
      return last
    end
  end
  return 0
end

local skip = 0
local rewrite = false  -- the stored fingerprints are another key's: replace them all
if known_count > 0 then
  skip = overlap()
  for a = 1, alternates do
    if skip > 0 then
      break
    end
    base = first_entry + count + (a - 1) * count
    skip = overlap()
    rewrite = skip > 0
  end
  base = FIRST_OWN_ARG
end

-- Is message i's id known (under the current digest key or an earlier one), or earlier in the batch?
local function repeated_id(i)
  if string.byte(ARGV[FIRST_OWN_ARG + i - 1], 1) ~= ID then
    return false
  end
  if known_id(ARGV[FIRST_OWN_ARG + i - 1]) then
    return true
  end
  for a = 1, alternates do
    if known_id(ARGV[first_entry + count + (a - 1) * count + i - 1]) then
      return true
    end
  end
  return false
end
local payloads, entries, fresh = {}, {}, {}
if rewrite then  -- the batch's repeats are fingerprinted again, under the current key
  for i = 1, skip do
    fresh[i] = ARGV[FIRST_OWN_ARG + i - 1]
  end
end
for i = skip + 1, count do
  if not repeated_id(i) then
    local fingerprint = ARGV[FIRST_OWN_ARG + i - 1]
    if string.byte(fingerprint, 1) == ID then
      known_ids[fingerprint] = true
    end
    payloads[#payloads + 1] = ARGV[first_payload + i - 1]
    entries[#entries + 1] = ARGV[first_entry + i - 1]
    fresh[#fresh + 1] = fingerprint
  end
end
local appended = #payloads

local newest_mark = nil
if appended > 0 then
  -- The caller marked the batch's last entry; if that message is a repeat, the newest appended is marked here.
  newest_mark = mark(payloads[appended])
  if entries[appended] ~= ARGV[first_entry + count - 1] then
    entries[appended] = entries[appended] .. '|' .. newest_mark
  end
  local newest = checked_index(messages_key, index_key)
  length = push(messages_key, payloads, 1, appended, h)
  local covered = push_index(index_key, newest, entries, 1, appended, length, h)
  length = trim(messages_key, index_key, meta_key, h.max_messages, length, covered,
    {values = entries, first = 1, count = appended})
elseif rewrite then
  newest_mark = string.sub(newest_known, -NEWEST_MARK_WIDTH)
end
if #fresh > 0 and length == 0 then  -- all trimmed away: nothing left to repeat
  redis.call('DEL', fingerprints_key)
elseif #fresh > 0 then
  local kept = FINGERPRINTS_KEPT
  if h.max_messages > 0 and h.max_messages < kept then
    kept = h.max_messages
  end
  local from = math.max(#fresh - kept + 1, 1)
  fresh[#fresh] = fresh[#fresh] .. newest_mark
  if rewrite then
    redis.call('DEL', fingerprints_key)
  elseif known_count > 0 then  -- the previous newest is no longer the newest: its mark goes
    redis.call('LSET', fingerprints_key, -1, string.sub(newest_known, 1, -NEWEST_MARK_WIDTH - 1))
  end
  push(fingerprints_key, fresh, from, #fresh, h)
  redis.call('LTRIM', fingerprints_key, -kept, -1)
end

h.fingerprints_unchecked = h.fingerprints_clean and not clean  -- said so, and found otherwise
finish_append(h, messages_key, batches_key, meta_key, registry_key, stored_labels, length,
  {batches_key, meta_key, index_key, fingerprints_key})
return appended
""",
    uses=(LABELS_LIBRARY, INDEX_LIBRARY, APPEND_LIBRARY),
)


def append_new_and_trim(
    header: AppendHeader,
    *,
    fingerprints: Sequence[bytes],
    payloads: Sequence[str],
    index: Sequence[str],
    alternates: Sequence[Sequence[bytes]] = (),
) -> ScriptCall:
    """The call of ``APPEND_NEW_AND_TRIM``: one fingerprint and one index entry per payload, and
    ``alternates``: the fingerprints under other digest keys (an encryption's retired keys)."""
    if not len(fingerprints) == len(payloads) == len(index) or any(len(a) != len(payloads) for a in alternates):
        raise ValueError("append_new_and_trim needs one fingerprint (in every set) and one index entry per payload")
    return ScriptCall(
        APPEND_NEW_AND_TRIM,
        header.script_keys(header.keys.fingerprints),
        [
            *header.args(len(payloads)),
            *fingerprints,
            *payloads,
            *_marked(index, payloads),
            *(f for alternate in alternates for f in alternate),
        ],
    )


# -- reading -----------------------------------------------------------------------------

# What the model gets, in one round trip that reads only the window: the thread's summary
# and the messages after its boundary, at most max_count of them and at most max_tokens by
# the index's counts, starting where a group starts. Positions are absolute (the meta hash's
# 'first' counts the messages trimmed away), so a summary's boundary survives trimming.
# When the index does not cover what a token budget needs (history written before it
# existed, or an index that does not describe the list: see INDEX_LIBRARY), `complete` is 0
# and every message after the boundary (within max_count) is returned, for the caller to
# count. Returns {absolute start, list start, complete, messages after the boundary, their
# tokens (-1: unknown), summary entry or nil, summary boundary, {payloads}}.
READ_CONTEXT = Script(
    "read_context",
    """
local messages_key, index_key, meta_key = KEYS[1], KEYS[2], KEYS[3]
local max_count = tonumber(ARGV[1])  -- 0: no limit
local max_tokens = tonumber(ARGV[2])  -- 0: no limit
local want_since_tokens = ARGV[3] == '1'

local length = redis.call('LLEN', messages_key)
local meta = checked('hash', 'HMGET', meta_key, 'first', 'summary', 'boundary')
local first = integer_field(meta_key, 'first', meta[1])
local boundary = integer_field(meta_key, 'boundary', meta[3])
local after = math.min(math.max(boundary - first, 0), length)  -- list position of the first unsummarized
local newest_start = after
if max_count > 0 and length - max_count > newest_start then
  newest_start = length - max_count
end

-- The index covers the newest `covered` messages if its newest entry marks the newest message
-- and it is no longer than the list; otherwise none.
local covered = 0
local newest = checked('list', 'LINDEX', index_key, -1)
if newest and marked_value(newest, redis.call('LINDEX', messages_key, -1)) then
  covered = redis.call('LLEN', index_key)
  if covered > length then
    covered = 0
  end
end

-- The window's start, whether the index covered it, and the tokens after the boundary (-1:
-- unknown), by the newest `covered` entries of the index; nil when an entry it reads is not
-- one (a damaged index: the caller asks again with none).
local function window(covered, start)
  local offset = length - covered  -- the list position of the index's first entry
  local complete = 1
  if max_tokens > 0 and start < length then
    -- Walk back from the newest message over the index, in growing chunks, until the budget
    -- is spent. Reaching the end of the index first means the caller must count the rest.
    local budget, pos, chunk = max_tokens, length, 32
    local spent = false
    while not spent and pos > start do
      local low = math.max(start, offset, pos - chunk)
      if low >= pos then
        complete = 0
        break
      end
      local entries = redis.call('LRANGE', index_key, low - offset, pos - 1 - offset)
      for k = #entries, 1, -1 do
        local t = entry_value(entries[k])
        if not t then
          return nil
        end
        if math.abs(t) > budget then
          spent = true
          break
        end
        budget = budget - math.abs(t)
        pos = pos - 1
      end
      chunk = chunk * 2
    end
    if complete == 1 then
      start = pos
    end
  end
  if complete == 1 then
    -- Start where a group starts: skip messages that continue a group cut off before them.
    while start < length and start >= offset do
      local value = entry_value(redis.call('LINDEX', index_key, start - offset))
      if not value then
        return nil
      end
      if value >= 0 or not may_continue(messages_key, start) then
        break
      end
      start = start + 1
    end
  end
  local since_tokens = -1
  if want_since_tokens and after >= offset then
    since_tokens = 0
    if after < length then
      for _, entry in ipairs(redis.call('LRANGE', index_key, after - offset, -1)) do
        local t = entry_value(entry)
        if not t then
          return nil
        end
        since_tokens = since_tokens + math.abs(t)
      end
    end
  end
  return start, complete, since_tokens
end

local start, complete, since_tokens = window(covered, newest_start)
if not start then
  start, complete, since_tokens = window(0, newest_start)
end

local payloads = {}
if start < length then
  payloads = redis.call('LRANGE', messages_key, start, -1)
end
return {first + start, start, complete, length - after, since_tokens, meta[2] or false, boundary, payloads}
""",
    uses=(INDEX_LIBRARY,),
)


def read_context(keys: ThreadKeys, *, max_count: int | None, max_tokens: int | None, since_tokens: bool) -> ScriptCall:
    """The call of ``READ_CONTEXT``."""
    return ScriptCall(
        READ_CONTEXT,
        [keys.messages, keys.index, keys.meta],
        [max_count or 0, max_tokens or 0, int(since_tokens)],
    )


# -- summaries ---------------------------------------------------------------------------

# Store a new summary covering every message before new_boundary (absolute), only if the
# thread's summary boundary is still expected_boundary: of two instances that summarized
# the same messages, one commits and the other's summary is dropped, so nothing is
# summarized twice or lost, and only if the caller still holds the lease (clear, edits and
# removals delete it). The summary lives in the meta hash, so it expires with the thread.
# Releases the caller's lease. Returns 1 if committed.
COMMIT_SUMMARY = Script(
    "commit_summary",
    """
local messages_key, meta_key, lease_key = KEYS[1], KEYS[2], KEYS[3]
local expected_boundary, new_boundary = tonumber(ARGV[1]), ARGV[2]
local payload, updated_ms, lease = ARGV[3], ARGV[4], ARGV[5]

-- The lease is gone if the thread was cleared, an entry edited or removed (which delete it),
-- or it ran out and another instance took it: what was summarized may no longer be the
-- thread's, so nothing is committed.
if redis.call('GET', lease_key) ~= lease then
  return 0
end
redis.call('DEL', lease_key)
if redis.call('EXISTS', messages_key) == 0 then
  return 0  -- the thread expired meanwhile: its summary must not outlive it
end
if tonumber(redis.call('HGET', meta_key, 'boundary') or '0') ~= expected_boundary then
  return 0  -- summarized by another instance meanwhile
end
redis.call('HSET', meta_key, 'summary', payload, 'boundary', new_boundary, 'summarized', updated_ms)
-- Without the registry the meta hash may be new here: it expires with the messages.
local pttl = redis.call('PTTL', messages_key)
if pttl > 0 then
  redis.call('PEXPIRE', meta_key, pttl)
end
return 1
""",
)


def commit_summary(
    keys: ThreadKeys, *, expected_boundary: int, new_boundary: int, payload: str, updated_ms: int, lease: str
) -> ScriptCall:
    """The call of ``COMMIT_SUMMARY``."""
    return ScriptCall(
        COMMIT_SUMMARY,
        [keys.messages, keys.meta, keys.compacting],
        [expected_boundary, new_boundary, payload, updated_ms, lease],
    )


# Release a compaction lease only if it is still the caller's (it may have expired and been
# taken by another instance meanwhile).
RELEASE_LEASE = Script(
    "release_lease",
    """
local lease_key, lease = KEYS[1], ARGV[1]
if redis.call('GET', lease_key) == lease then
  return redis.call('DEL', lease_key)
end
return 0
""",
)


def release_lease(keys: ThreadKeys, lease: str) -> ScriptCall:
    """The call of ``RELEASE_LEASE``."""
    return ScriptCall(RELEASE_LEASE, [keys.compacting], [lease])


# -- whole threads -----------------------------------------------------------------------

# Delete a thread found in the registry if it was last active at or before the cutoff
# (or has expired meanwhile). Atomic, so a thread written to after the registry page was
# read survives. Returns 1 (deleted), 2 (already expired: no key left) or 0 (active again:
# kept), or 3 (its meta hash or its 'active' is damaged: kept, for the caller to report). A
# thread whose meta hash is gone (evicted) but which still owns a key is deleted: the
# registry entry that led here says it was last active before the cutoff.
PURGE_THREAD = Script(
    "purge_thread",
    """
local meta_key = KEYS[2]  -- KEYS: every key of the thread, the message list and the meta hash first
local cutoff_ms, member, prefix = tonumber(ARGV[1]), ARGV[2], ARGV[3]  -- prefix '': labels kept by the caller

local active = redis.pcall('HGET', meta_key, 'active')
if type(active) == 'table' then  -- the meta key holds another type: damaged
  return 3
elseif not active then
  if redis.call('EXISTS', unpack(KEYS)) == 0 then
    return 2
  end
elseif not string.match(active, '^%d+$') then
  return 3
elseif tonumber(active) > cutoff_ms then
  return 0
end
if prefix ~= '' then
  unindex_labels(prefix, member, redis.call('HGET', meta_key, 'labels'))
end
redis.call('DEL', unpack(KEYS))
return 1
""",
    uses=(LABELS_LIBRARY,),
)


def purge_thread(keys: ThreadKeys, *, cutoff_ms: int, prefix: str | None) -> ScriptCall:
    """The call of ``PURGE_THREAD`` for one thread (all of its keys); ``prefix`` None: the caller
    removes the thread from its label indexes (Redis Cluster)."""
    return ScriptCall(PURGE_THREAD, list(keys.owned), [cutoff_ms, keys.thread_id, prefix or ""])


# Write a whole exported thread: messages in order with their index entries, its summary
# (boundary counted from the first message), metadata as exported, expiry as left at
# export. Refuses (returns 0) when any key of the thread exists (a session snapshot alone
# is a thread), unless `replace` is '1', which first deletes every key of the thread.
IMPORT_THREAD = Script(
    "import_thread",
    """
local messages_key, meta_key, index_key, session_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
-- then every other key of the thread, then (standalone Redis) the registry
local member, replace = ARGV[1], ARGV[2] == '1'
local created_ms, active_ms, ttl_ms, expire_ms, labels = ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6]), ARGV[7]
local has_registry, n = ARGV[8] == '1', tonumber(ARGV[9])
local summary, summary_boundary, forked_from = ARGV[10], ARGV[11], ARGV[12]
local session, session_expire_ms = ARGV[13], tonumber(ARGV[14])  -- session '': none
local first = 15  -- n payloads, then their n index entries
local owned = #KEYS
local registry_key = nil
if has_registry then
  registry_key = KEYS[#KEYS]
  owned = owned - 1
end

if not replace and redis.call('EXISTS', unpack(KEYS, 1, owned)) > 0 then
  return 0
end
local old_labels = redis.pcall('HGET', meta_key, 'labels')
if type(old_labels) == 'table' then  -- replacing a meta key of another type
  old_labels = false
end
redis.call('DEL', unpack(KEYS, 1, owned))
if session ~= '' then
  if session_expire_ms > 0 then
    redis.call('SET', session_key, session, 'PX', session_expire_ms)
  else
    redis.call('SET', session_key, session)
  end
end
if n == 0 then
  -- A session snapshot alone: like a thread only RedisSessionStore wrote, it has no registry
  -- entry; one the replaced thread had goes, with its label index entries.
  if registry_key then
    unindex_labels(prefix_of(registry_key), member, old_labels)
    redis.call('ZREM', registry_key, member)
    forget_empty_registry(registry_key)
  end
  return 1
end
local final = first + n - 1
for i = first, final, 1000 do
  redis.call('RPUSH', messages_key, unpack(ARGV, i, math.min(i + 999, final)))
  redis.call('RPUSH', index_key, unpack(ARGV, i + n, math.min(i + 999, final) + n))
end
local newest = redis.call('LINDEX', index_key, -1)
redis.call('LSET', index_key, -1, newest .. '|' .. string.sub(redis.sha1hex(ARGV[final]), 1, NEWEST_MARK_WIDTH))
redis.call('HSET', meta_key, 'created', created_ms, 'active', active_ms, 'count', n, 'ttl', ttl_ms, 'labels', labels)
if summary ~= '' then
  redis.call('HSET', meta_key, 'summary', summary, 'boundary', summary_boundary, 'summarized', active_ms)
end
if forked_from ~= '' then
  redis.call('HSET', meta_key, 'forked_from', forked_from)
end
if expire_ms > 0 then
  for _, key in ipairs({messages_key, meta_key, index_key}) do
    redis.call('PEXPIRE', key, expire_ms)
  end
end
if registry_key then
  mark_labels_complete(registry_key, redis.call('ZADD', registry_key, active_ms, member))
  index_labels(prefix_of(registry_key), member, old_labels, labels, active_ms)
end
return 1
""",
    uses=(LABELS_LIBRARY,),
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
    index: Sequence[str],
    summary: str | None = None,
    summary_boundary: int = 0,
    forked_from: str | None = None,
    session: str | None = None,
    session_expire_ms: int = 0,
) -> ScriptCall:
    """The call of ``IMPORT_THREAD``. ``registry_key`` None: the caller enters the thread and its labels
    in their indexes (Redis Cluster). ``session``: the session snapshot as stored (sealed if so)."""
    if len(index) != len(payloads):
        raise ValueError("import_thread needs one index entry per message")
    if not payloads and session is None:
        raise ValueError("import_thread needs messages or a session snapshot")
    head = [keys.messages, keys.meta, keys.index, keys.session]
    thread_keys = head + [key for key in keys.owned if key not in head]
    return ScriptCall(
        IMPORT_THREAD,
        [*thread_keys, registry_key] if registry_key is not None else thread_keys,
        [
            keys.thread_id,
            int(replace),
            created_ms,
            active_ms,
            ttl_ms,
            expire_ms,
            labels,
            int(registry_key is not None),
            len(payloads),
            summary or "",
            summary_boundary,
            forked_from or "",
            session or "",
            session_expire_ms,
            *payloads,
            *index,
        ],
    )


# What the scripts that change entries in place (rekey, set, remove) share: whether the index
# still describes the list, and how a thread's bookkeeping follows an entry changed or removed.
# A script includes it after INDEX_LIBRARY (marked_value, mark).
ENTRY_LIBRARY = """
-- The number of the newest messages the index covers, 0 (and the index deleted) if it is stale:
-- its newest entry (a number and a mark) must mark the newest message, and it may not be
-- longer than the list.
local function trusted_index(messages_key, index_key)
  local newest = redis.call('LINDEX', index_key, -1)
  if not newest then
    return 0
  end
  if marked_value(newest, redis.call('LINDEX', messages_key, -1)) then
    local covered = redis.call('LLEN', index_key)
    if covered <= redis.call('LLEN', messages_key) then
      return covered
    end
  end
  redis.call('DEL', index_key)
  return 0
end

-- Mark the index's newest entry with the list's newest message (after that message changed).
local function remark(messages_key, index_key)
  local newest = redis.call('LINDEX', index_key, -1)
  local message = redis.call('LINDEX', messages_key, -1)
  if newest and message then
    redis.call('LSET', index_key, -1, string.match(newest, '^-?%d+') .. '|' .. mark(message))
  end
end
"""


# Rekey: replace entries the client re-encrypted, each only if it is still in the list exactly
# as the client read it. Concurrent trims shift positions, so entries are found by value, not
# by the index they had; one trimmed away or changed meanwhile is left alone, and appends
# are never touched. Equal entries are matched in list order. LSET keeps the thread's TTL.
# Returns how many were replaced.
REPLACE_UNCHANGED = Script(
    "replace_unchanged",
    """
local messages_key, index_key, fingerprints_key = KEYS[1], KEYS[2], KEYS[3]
-- ARGV: {entry as read, replacement} pairs, in list order

local positions = {}  -- entry -> its positions, the smallest last
local current = redis.call('LRANGE', messages_key, 0, -1)
local last = current[#current]
local covered = trusted_index(messages_key, index_key)
local newest_fingerprint = redis.call('LINDEX', fingerprints_key, -1)
local fingerprints_trusted = newest_fingerprint and last
  and string.sub(newest_fingerprint, -NEWEST_MARK_WIDTH) == mark(last)
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
-- The newest entry changed: the index and the fingerprints that marked it mark its new bytes,
-- or the next append would find them stale and drop them (group boundaries, token counts).
local now_last = redis.call('LINDEX', messages_key, -1)
if now_last and now_last ~= last then
  if covered > 0 then
    remark(messages_key, index_key)
  end
  if fingerprints_trusted then
    local unmarked = string.sub(newest_fingerprint, 1, -NEWEST_MARK_WIDTH - 1)
    redis.call('LSET', fingerprints_key, -1, unmarked .. mark(now_last))
  end
end
return replaced
""",
    uses=(INDEX_LIBRARY, ENTRY_LIBRARY),
)


def replace_unchanged(keys: ThreadKeys, pairs: Sequence[tuple[str | bytes, str]]) -> ScriptCall:
    """The call of ``REPLACE_UNCHANGED``: (entry as read, replacement) pairs in list order."""
    return ScriptCall(
        REPLACE_UNCHANGED, [keys.messages, keys.index, keys.fingerprints], [part for pair in pairs for part in pair]
    )


# Replace a string key's value (field '') or a hash field's only if it is still the one the
# client read (a string keeps its TTL). For rekeying session snapshots and summaries.
# Returns 1 if replaced.
REPLACE_VALUE_UNCHANGED = Script(
    "replace_value_unchanged",
    """
local key = KEYS[1]
local field, expected, replacement = ARGV[1], ARGV[2], ARGV[3]
local current
if field == '' then
  current = redis.call('GET', key)
else
  current = redis.call('HGET', key, field)
end
if current ~= expected then
  return 0
end
if field == '' then
  redis.call('SET', key, replacement, 'KEEPTTL')
else
  redis.call('HSET', key, field, replacement)
end
return 1
""",
)


def replace_value_unchanged(key: str, expected: str | bytes, replacement: str, *, field: str = "") -> ScriptCall:
    """The call of ``REPLACE_VALUE_UNCHANGED`` (``field``: a hash field; '' for a string key)."""
    return ScriptCall(REPLACE_VALUE_UNCHANGED, [key], [field, expected, replacement])


# -- one entry at a time (the list-like methods kept for agent-framework-redis compatibility) --

# Replace the entry at `position` (negative: from the end), resolved when the script runs, so a
# concurrent append or trim never makes it replace another entry than the one named then. Its
# index entry follows; the 1.x repeat detection restarts (its fingerprints describe the old
# entry). Returns the position replaced, or -1 when there is none (out of range).
SET_ENTRY = Script(
    "set_entry",
    """
local messages_key, index_key, fingerprints_key, lease_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local position, payload, entry = tonumber(ARGV[1]), ARGV[2], ARGV[3]

local length = redis.call('LLEN', messages_key)
if position < 0 then
  position = length + position
end
if position < 0 or position >= length then
  return -1
end
local covered = trusted_index(messages_key, index_key)
redis.call('LSET', messages_key, position, payload)
local offset = length - covered
if position >= offset then
  redis.call('LSET', index_key, position - offset, entry)
end
if covered > 0 and position == length - 1 then
  remark(messages_key, index_key)
end
redis.call('DEL', fingerprints_key, lease_key)  -- a compaction running now read the old entry
return position
""",
    uses=(INDEX_LIBRARY, ENTRY_LIBRARY),
)


def set_entry(keys: ThreadKeys, *, position: int, payload: str, entry: str) -> ScriptCall:
    """The call of ``SET_ENTRY``: ``entry`` is the message's index entry (``groups.index_entry``)."""
    return ScriptCall(
        SET_ENTRY, [keys.messages, keys.index, keys.fingerprints, keys.compacting], [position, payload, entry]
    )


# Remove the first entry equal to `stored` (the exact bytes the caller read), wherever concurrent
# appends and trims have moved it meanwhile; its index entry goes with it, and a summary that
# covered it covers one message less. Returns the position removed, or -1 when the entry is gone.
REMOVE_ENTRY = Script(
    "remove_entry",
    """
local messages_key, index_key, fingerprints_key, meta_key, lease_key = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local stored = ARGV[1]
-- Never a stored entry: message JSON starts with '{', a sealed entry with a scheme name.
local TOMBSTONE = '\0removed'

local position = redis.call('LPOS', messages_key, stored)
if not position then
  return -1
end
local length = redis.call('LLEN', messages_key)
-- Read (and checked) before the first write: a damaged field fails the removal whole.
local meta = checked('hash', 'HMGET', meta_key, 'first', 'boundary', 'count')
local first = integer_field(meta_key, 'first', meta[1])
local boundary = integer_field(meta_key, 'boundary', meta[2])
local covered = trusted_index(messages_key, index_key)
redis.call('LSET', messages_key, position, TOMBSTONE)
redis.call('LREM', messages_key, 1, TOMBSTONE)
local offset = length - covered
if position >= offset then
  redis.call('LSET', index_key, position - offset, TOMBSTONE)
  redis.call('LREM', index_key, 1, TOMBSTONE)
  if position == length - 1 then
    remark(messages_key, index_key)
  end
end
if meta[2] and position + first < boundary then
  redis.call('HINCRBY', meta_key, 'boundary', -1)
end
if meta[3] then
  redis.call('HSET', meta_key, 'count', length - 1)
end
redis.call('DEL', fingerprints_key, lease_key)  -- a compaction running now read the old entries
return position
""",
    uses=(INDEX_LIBRARY, ENTRY_LIBRARY),
)


def remove_entry(keys: ThreadKeys, *, stored: str | bytes) -> ScriptCall:
    """The call of ``REMOVE_ENTRY``."""
    return ScriptCall(
        REMOVE_ENTRY, [keys.messages, keys.index, keys.fingerprints, keys.meta, keys.compacting], [stored]
    )


# -- deleting ----------------------------------------------------------------------------

# Delete every key of a thread, its registry entry and its label index entries, atomically:
# no append can slip in between. Returns {keys that existed, messages they held}. The last
# thread of a prefix takes the prefix's label index marker with it.
DELETE_THREAD = Script(
    "delete_thread",
    """
local messages_key, meta_key = KEYS[1], KEYS[2]  -- then every other key of the thread, then the registry
local registry_key = KEYS[#KEYS]
local member = ARGV[1]

-- pcall: a key of another type (damaged) is deleted all the same.
local messages = redis.pcall('LLEN', messages_key)
if type(messages) ~= 'number' then
  messages = 0
end
local labels = redis.pcall('HMGET', meta_key, 'labels')
if type(labels) == 'table' and not labels.err then
  unindex_labels(prefix_of(registry_key), member, labels[1])
end
local existed = redis.call('DEL', unpack(KEYS, 1, #KEYS - 1))
redis.call('ZREM', registry_key, member)
forget_empty_registry(registry_key)
return {existed, messages}
""",
    uses=(LABELS_LIBRARY,),
)


def delete_thread(keys: ThreadKeys, *, registry_key: str) -> ScriptCall:
    """The call of ``DELETE_THREAD`` (standalone Redis: the registry shares the script)."""
    return ScriptCall(DELETE_THREAD, [*keys.owned, registry_key], [keys.thread_id])


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


# -- workflow checkpoints ----------------------------------------------------------------

from .keyspace import WorkflowKeys  # noqa: E402 - this section's own, kept beside it

__all__ += [
    "CHECKPOINT_TIES",
    "DELETE_CHECKPOINT",
    "LATEST_CHECKPOINT",
    "PRUNE_CHECKPOINTS",
    "REPLACE_CHECKPOINTS_UNCHANGED",
    "SAVE_CHECKPOINT",
    "SWEEP_CHECKPOINT_INDEX",
    "delete_checkpoint",
    "latest_checkpoint",
    "prune_checkpoints",
    "replace_checkpoints_unchanged",
    "save_checkpoint",
    "sweep_checkpoint_index",
]

# A workflow's timeline scores a checkpoint by its timestamp in milliseconds times this, plus
# its rank among the checkpoints of the same millisecond in save order (at most this many apart;
# further ones share the last rank). 2**53 / 1024 ms reaches the year 2248.
CHECKPOINT_TIES = 1024

# What the checkpoint scripts share: the retention trim.
CHECKPOINTS_LIBRARY = """
-- Drop the prefix index's entry of `id` if it still names `workflow` (one saved under another
-- workflow meanwhile keeps its entry); 1 if dropped.
local function unfile(index_key, id, workflow)
  if redis.call('HGET', index_key, id) == workflow then
    return redis.call('HDEL', index_key, id)
  end
  return 0
end

-- Delete a workflow's checkpoints but its newest `keep`, oldest first, and (standalone Redis:
-- index_key given) their entries in the prefix's index that still name this workflow. Returns
-- the ids deleted, oldest first.
local function trim_checkpoints(bodies_key, timeline_key, index_key, workflow, keep)
  local excess = redis.call('ZCARD', timeline_key) - keep
  if excess <= 0 then
    return {}
  end
  local trimmed = redis.call('ZRANGE', timeline_key, 0, excess - 1)
  redis.call('ZREMRANGEBYRANK', timeline_key, 0, excess - 1)
  for _, old in ipairs(trimmed) do
    redis.call('HDEL', bodies_key, old)
    if index_key then
      unfile(index_key, old, workflow)
    end
  end
  return trimmed
end
"""

# Store one checkpoint of a workflow, atomically: its body (HSET), its place in the timeline,
# its entry in the prefix's checkpoint index (standalone Redis; on a Cluster the caller sets it
# before the script), the trim to `keep` (oldest first, their index entries with them) and the
# TTL of both keys (sliding: every save refreshes it). Every key it writes is read first, so a
# key of another type ends it with WRONGTYPE_KEY having written nothing. Returns
# {1 if the id was another workflow's (then its name) else 0, name or '', {trimmed ids}}.
SAVE_CHECKPOINT = Script(
    "save_checkpoint",
    f"local TIES = {CHECKPOINT_TIES}\n"
    + """
local bodies_key, timeline_key, index_key = KEYS[1], KEYS[2], KEYS[3]  -- index_key: standalone only
local id, body, workflow = ARGV[1], ARGV[2], ARGV[6]
local at, ttl, keep = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])

checked('hash', 'HEXISTS', bodies_key, id)
local stored = checked('zset', 'ZSCORE', timeline_key, id)
local previous = false
if index_key then
  previous = checked('hash', 'HGET', index_key, id)
  if previous == workflow then
    previous = false
  end
end

local low, high = at * TIES, at * TIES + TIES - 1
local score = stored and tonumber(stored)
if not (score and score >= low and score <= high) then  -- a checkpoint saved again keeps its place
  local tie = redis.call('ZREVRANGEBYSCORE', timeline_key, string.format('%.0f', high),
    string.format('%.0f', low), 'WITHSCORES', 'LIMIT', 0, 1)
  score = tie[2] and math.min(tonumber(tie[2]) + 1, high) or low
end
redis.call('HSET', bodies_key, id, body)
redis.call('ZADD', timeline_key, string.format('%.0f', score), id)
if index_key then
  redis.call('HSET', index_key, id, workflow)
end

local trimmed = {}
if keep > 0 then
  trimmed = trim_checkpoints(bodies_key, timeline_key, index_key, workflow, keep)
end
for _, key in ipairs({bodies_key, timeline_key}) do
  if ttl > 0 then
    redis.call('PEXPIRE', key, ttl)
  else
    redis.call('PERSIST', key)
  end
end
return {previous and 1 or 0, previous or '', trimmed}
""",
    uses=(INDEX_LIBRARY, CHECKPOINTS_LIBRARY),
)


def save_checkpoint(
    keys: WorkflowKeys,
    *,
    checkpoint_id: str,
    body: str,
    at_ms: int,
    ttl_ms: int,
    keep_last: int | None,
    index_key: str | None,
) -> ScriptCall:
    """The call of ``SAVE_CHECKPOINT`` (``index_key``: the prefix's checkpoint index, standalone Redis only)."""
    return ScriptCall(
        SAVE_CHECKPOINT,
        [*keys.owned, *([index_key] if index_key else [])],
        [checkpoint_id, body, max(0, at_ms), ttl_ms, keep_last or 0, keys.workflow_name],
    )


# Delete one checkpoint of a workflow: body, timeline entry and (standalone) its index entry if
# it still names this workflow, atomically. Returns 1 if the body existed, else 0.
DELETE_CHECKPOINT = Script(
    "delete_checkpoint",
    """
local bodies_key, timeline_key, index_key = KEYS[1], KEYS[2], KEYS[3]  -- index_key: standalone only
local id, workflow = ARGV[1], ARGV[2]

local existed = checked('hash', 'HEXISTS', bodies_key, id)
checked('zset', 'ZSCORE', timeline_key, id)
local located = index_key and checked('hash', 'HGET', index_key, id)
redis.call('HDEL', bodies_key, id)
redis.call('ZREM', timeline_key, id)
if located == workflow then
  redis.call('HDEL', index_key, id)
end
return existed
""",
    uses=(INDEX_LIBRARY,),
)


def delete_checkpoint(keys: WorkflowKeys, *, checkpoint_id: str, index_key: str | None) -> ScriptCall:
    """The call of ``DELETE_CHECKPOINT``."""
    return ScriptCall(
        DELETE_CHECKPOINT,
        [*keys.owned, *([index_key] if index_key else [])],
        [checkpoint_id, keys.workflow_name],
    )


# The newest checkpoint of a workflow in one round trip: {id, body} ({id} when the body is
# missing: a damaged workflow), or {} when it has none. Touches the workflow's keys only.
LATEST_CHECKPOINT = Script(
    "latest_checkpoint",
    """
local bodies_key, timeline_key = KEYS[1], KEYS[2]
local newest = checked('zset', 'ZREVRANGE', timeline_key, 0, 0)
if #newest == 0 then
  return {}
end
return {newest[1], checked('hash', 'HGET', bodies_key, newest[1])}
""",
    uses=(INDEX_LIBRARY,),
)


def latest_checkpoint(keys: WorkflowKeys) -> ScriptCall:
    """The call of ``LATEST_CHECKPOINT``."""
    return ScriptCall(LATEST_CHECKPOINT, list(keys.owned), [])


# Keep the newest `keep` checkpoints of a workflow and delete the older ones (bodies, timeline
# entries and, standalone, their index entries if they still name this workflow), atomically:
# what SAVE_CHECKPOINT's keep_last trim does, on demand. Returns the ids deleted, oldest first.
PRUNE_CHECKPOINTS = Script(
    "prune_checkpoints",
    """
local bodies_key, timeline_key, index_key = KEYS[1], KEYS[2], KEYS[3]  -- index_key: standalone only
local keep, workflow = tonumber(ARGV[1]), ARGV[2]

checked('hash', 'HLEN', bodies_key)
if index_key then
  checked('hash', 'HLEN', index_key)
end
checked('zset', 'ZCARD', timeline_key)
return trim_checkpoints(bodies_key, timeline_key, index_key, workflow, keep)
""",
    uses=(INDEX_LIBRARY, CHECKPOINTS_LIBRARY),
)


def prune_checkpoints(keys: WorkflowKeys, *, keep: int, index_key: str | None) -> ScriptCall:
    """The call of ``PRUNE_CHECKPOINTS`` (``index_key``: standalone Redis only)."""
    return ScriptCall(PRUNE_CHECKPOINTS, [*keys.owned, *([index_key] if index_key else [])], [keep, keys.workflow_name])


# Redis Cluster: after a trim or a delete in the workflow's slot, drop the prefix index's entries
# of those ids that still name this workflow (the index is in another slot; one saved under
# another workflow meanwhile keeps its entry). Returns how many it removed.
FORGET_CHECKPOINT_IDS = Script(
    "forget_checkpoint_ids",
    """
local index_key, workflow = KEYS[1], ARGV[1]
local removed = 0
for i = 2, #ARGV do
  removed = removed + unfile(index_key, ARGV[i], workflow)
end
return removed
""",
    uses=(CHECKPOINTS_LIBRARY,),
)


def forget_checkpoint_ids(index_key: str, workflow_name: str, checkpoint_ids: Sequence[str]) -> ScriptCall:
    """The call of ``FORGET_CHECKPOINT_IDS``."""
    return ScriptCall(FORGET_CHECKPOINT_IDS, [index_key], [workflow_name, *checkpoint_ids])


# Rekey: replace checkpoint bodies the client re-sealed, each only if the hash still holds it
# exactly as the client read it (one saved again or deleted meanwhile is left alone). HSET
# keeps the key's TTL; the timeline and the index name ids, which do not change. Returns how
# many were replaced.
REPLACE_CHECKPOINTS_UNCHANGED = Script(
    "replace_checkpoints_unchanged",
    """
local bodies_key = KEYS[1]
-- ARGV: {id, body as read, replacement} triples

local replaced = 0
for i = 1, #ARGV, 3 do
  if checked('hash', 'HGET', bodies_key, ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', bodies_key, ARGV[i], ARGV[i + 2])
    replaced = replaced + 1
  end
end
return replaced
""",
    uses=(INDEX_LIBRARY,),
)


def replace_checkpoints_unchanged(keys: WorkflowKeys, triples: Sequence[tuple[str, bytes | str, str]]) -> ScriptCall:
    """The call of ``REPLACE_CHECKPOINTS_UNCHANGED``: (id, body as read, replacement) triples."""
    return ScriptCall(
        REPLACE_CHECKPOINTS_UNCHANGED, [keys.checkpoints], [part for triple in triples for part in triple]
    )


# Standalone Redis: remove index entries (id -> workflow name) whose workflow's hash no longer
# holds the id (its keys expired, or a crash between a Cluster save's steps), each only if it
# still names the workflow it was read with and that hash still lacks the id. ARGV: {id,
# workflow} pairs; KEYS: the index, then each pair's bodies key. Returns the ids removed.
SWEEP_CHECKPOINT_INDEX = Script(
    "sweep_checkpoint_index",
    """
local index_key = KEYS[1]
local removed = {}
for i = 1, #ARGV, 2 do
  local id, workflow, bodies_key = ARGV[i], ARGV[i + 1], KEYS[(i + 1) / 2 + 1]
  if checked('hash', 'HGET', index_key, id) == workflow
      and checked('hash', 'HEXISTS', bodies_key, id) == 0 then
    redis.call('HDEL', index_key, id)
    removed[#removed + 1] = id
  end
end
return removed
""",
    uses=(INDEX_LIBRARY,),
)


def sweep_checkpoint_index(index_key: str, stale: Sequence[tuple[str, WorkflowKeys]]) -> ScriptCall:
    """The call of ``SWEEP_CHECKPOINT_INDEX``: (id, workflow keys) of the entries found stale."""
    return ScriptCall(
        SWEEP_CHECKPOINT_INDEX,
        [index_key, *(keys.checkpoints for _, keys in stale)],
        [part for checkpoint_id, keys in stale for part in (checkpoint_id, keys.workflow_name)],
    )
