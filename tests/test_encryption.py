"""Encryption at rest: only ciphertext in Redis, key rotation, tampering and misplaced entries."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import pickle

import pytest
import redis.asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent_framework_redis_store import (
    AESGCMEncryption,
    DecryptionError,
    Keyspace,
    RedisChatMessageStore,
    RekeyProgress,
    rekey_prefix,
)
from agent_framework_redis_store._core.codec import message_from_dict
from agent_framework_redis_store._core.encryption import key_id_of, parse_keys
from agent_framework_redis_store._core.fingerprints import fingerprint
from agent_framework_redis_store._core.lua import FINGERPRINT_WIDTH, REPLACE_UNCHANGED
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import user_message

KEY1, KEY2 = os.urandom(16), os.urandom(32)
SECRET = "my card number is 4111-1111-1111-1111"


def texts(messages: list) -> list[str]:
    return [m.text for m in messages]


def only_k1() -> AESGCMEncryption:
    return AESGCMEncryption({"k1": KEY1}, current="k1")


def k2_and_k1() -> AESGCMEncryption:
    return AESGCMEncryption({"k2": KEY2, "k1": KEY1}, current="k2")


async def entries(raw: redis.asyncio.Redis, key: str) -> list[bytes]:
    return await raw.lrange(key, 0, -1)  # type: ignore[misc]


async def test_bodies_are_stored_only_as_ciphertext(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="user_42", encryption=only_k1(), ttl=60) as store:
        await store.add_messages([user_message(SECRET), user_message(SECRET)])
        stored = await entries(raw, store.redis_key)
        assert len(stored) == 2
        for entry in stored:
            assert entry.startswith(b"aesgcm1:k1:")
            assert b"4111" not in entry
            assert b"user" not in entry  # not even the role
        assert stored[0] != stored[1]  # a fresh nonce per entry
        # Thread id, count and TTL stay readable without the key.
        assert b"user_42" in store.redis_key.encode()
        assert await raw.llen(store.redis_key) == 2  # type: ignore[misc]
        assert await raw.pttl(store.redis_key) > 0
        assert texts(await store.list_messages()) == [SECRET, SECRET]
        assert texts(await store.list_messages(last=1)) == [SECRET]
        assert await store.count() == 2


async def test_seeded_messages_are_encrypted_too(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(
        redis_url, thread_id="t", encryption=only_k1(), messages=[user_message(SECRET)]
    ) as store:
        assert texts(await store.list_messages()) == [SECRET]
        assert [key_id_of(e) for e in await entries(raw, store.redis_key)] == ["k1"]


async def test_rotation_old_keys_decrypt_and_rekey_retires_them(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=only_k1()) as old:
        await old.add_messages([user_message("a"), user_message("b")])
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=k2_and_k1()) as rotated:
        assert texts(await rotated.list_messages()) == ["a", "b"]
        await rotated.add_messages([user_message("c")])
        assert [key_id_of(e) for e in await entries(raw, rotated.redis_key)] == ["k1", "k1", "k2"]

        # Before the rekey, a reader without k2 cannot read the new entry, and says which key is missing.
        async with RedisChatMessageStore(redis_url, thread_id="t", encryption=only_k1()) as stale:
            with pytest.raises(DecryptionError, match=r"index 2: .*key id 'k2'.*not among the keys") as info:
                await stale.list_messages()
            assert info.value.key == rotated.redis_key
            assert info.value.index == 2

        ttl_before = await raw.pttl(rotated.redis_key)
        assert await rotated.rekey() == 2
        assert await rotated.rekey() == 0  # nothing left to do
        assert [key_id_of(e) for e in await entries(raw, rotated.redis_key)] == ["k2", "k2", "k2"]
        assert await raw.pttl(rotated.redis_key) == ttl_before  # -1: no TTL was added or removed

    async with RedisChatMessageStore(
        redis_url, thread_id="t", encryption=AESGCMEncryption({"k2": KEY2}, current="k2")
    ) as new_only:
        assert texts(await new_only.list_messages()) == ["a", "b", "c"]


async def test_tampered_entry_is_named_and_the_rest_is_untouched(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=only_k1()) as writer:
        await writer.add_messages([user_message("zero"), user_message("one"), user_message("two")])
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=k2_and_k1()) as store:
        stored = await entries(raw, store.redis_key)
        tampered = bytearray(stored[1])
        tampered[-5] = ord("A") if tampered[-5] != ord("A") else ord("B")  # one base64 digit of the ciphertext
        await raw.lset(store.redis_key, 1, bytes(tampered))  # type: ignore[misc]

        with pytest.raises(DecryptionError, match=r"at index 1: authentication with key id 'k1' failed") as info:
            await store.list_messages()
        assert info.value.key == store.redis_key
        assert "one" not in str(info.value)
        with pytest.raises(DecryptionError, match=r"at index -2"):
            await store.list_messages(last=2)
        assert texts(await store.list_messages(last=1)) == ["two"]
        with pytest.raises(DecryptionError, match="at index 1"):
            await store.rekey()  # and writes nothing, not even the good entries
        assert await entries(raw, store.redis_key) == [stored[0], bytes(tampered), stored[2]]

        # Altering the key id in the header is caught as well: it is part of the authenticated data.
        await raw.lset(store.redis_key, 1, stored[1].replace(b":k1:", b":k2:", 1))  # type: ignore[misc]
        with pytest.raises(DecryptionError, match=r"at index 1: authentication with key id 'k2' failed"):
            await store.list_messages()


async def test_entry_copied_into_another_thread_does_not_decrypt(redis_url: str, raw: redis.asyncio.Redis) -> None:
    enc = k2_and_k1()
    async with (
        RedisChatMessageStore(redis_url, thread_id="alice", encryption=enc) as alice,
        RedisChatMessageStore(redis_url, thread_id="mallory", encryption=enc) as mallory,
        RedisChatMessageStore(redis_url, thread_id="alice", key_prefix="other", encryption=enc) as elsewhere,
    ):
        await alice.add_messages([user_message(SECRET)])
        await mallory.add_messages([user_message("hi")])
        (stolen,) = await entries(raw, alice.redis_key)
        await raw.rpush(mallory.redis_key, stolen)  # type: ignore[misc]
        await raw.rpush(elsewhere.redis_key, stolen)  # type: ignore[misc]
        with pytest.raises(DecryptionError, match=r"at index 1: .*copied from another thread or key prefix"):
            await mallory.list_messages()
        with pytest.raises(DecryptionError, match=r"at index 0: .*another thread or key prefix"):
            await elsewhere.list_messages()
        assert texts(await alice.list_messages()) == [SECRET]


async def test_plaintext_and_ciphertext_in_the_wrong_store_are_reported(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t") as plain:
        await plain.add_messages([user_message("written in the clear")])
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=only_k1()) as encrypted:
        with pytest.raises(DecryptionError, match=r"at index 0: it is plaintext but the store encrypts"):
            await encrypted.list_messages()
        with pytest.raises(DecryptionError, match="it is plaintext"):
            await encrypted.rekey()
        await encrypted.add_messages([user_message("sealed")])
        async with RedisChatMessageStore(redis_url, thread_id="t") as plain_reader:
            with pytest.raises(DecryptionError, match=r"at index 1: it is encrypted \(key id 'k1'\) but the store has"):
                await plain_reader.list_messages()
        # Turning encryption on for an existing thread: encrypt what was written in the clear.
        assert await encrypted.rekey(encrypt_plaintext=True) == 1
        assert [key_id_of(e) for e in await entries(raw, encrypted.redis_key)] == ["k1", "k1"]
        assert texts(await encrypted.list_messages()) == ["written in the clear", "sealed"]


async def test_rekey_swaps_only_entries_still_as_read_wherever_a_trim_moved_them(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=only_k1()) as store:
        await store.add_messages([user_message(f"m{i}") for i in range(4)])
    enc = k2_and_k1()
    key = store.redis_key
    as_read = await entries(raw, key)
    replacements = [enc.encrypt(enc.decrypt(entry.decode(), context=key), context=key) for entry in as_read]
    args = [value for pair in zip(as_read, replacements, strict=True) for value in pair]
    # Between the read and the swap, other writers trim the oldest entry, append one and
    # change another.
    await raw.lpop(key)  # type: ignore[misc]
    await raw.rpush(key, b"appended")  # type: ignore[misc]
    await raw.lset(key, 0, b"changed meanwhile")  # type: ignore[misc]
    keys = Keyspace().thread("t")
    assert await REPLACE_UNCHANGED.run(raw, [key, keys.index, keys.fingerprints], args) == 2
    swapped = [replacement.encode() for replacement in replacements[2:]]
    assert await entries(raw, key) == [b"changed meanwhile", *swapped, b"appended"]


async def test_rekey_keeps_the_index_of_tool_call_groups(redis_url: str, raw: redis.asyncio.Redis) -> None:
    call = {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": {"q": 1}}
    turn = [
        {"role": "user", "contents": [{"type": "text", "text": "question"}]},
        {"role": "assistant", "contents": [call]},
        {"role": "tool", "contents": [{"type": "function_result", "call_id": "c1", "result": "found"}]},
    ]
    answer = {"role": "assistant", "contents": [{"type": "text", "text": "done"}]}
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=only_k1()) as old:
        await old.add_messages([message_from_dict(m) for m in turn])
    index_key = Keyspace().thread("t").index
    before = [entry.split(b"|")[0] for entry in await entries(raw, index_key)]
    assert len(before) == 3
    assert before[2].startswith(b"-")  # the result continues the call's group
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=k2_and_k1(), max_messages=3) as store:
        assert await store.rekey() == 3  # the newest entry too: its bytes change
        await store.add_messages([message_from_dict(answer)])
        after = [entry.split(b"|")[0] for entry in await entries(raw, index_key)]
        # The index survived the rekey (a stale one is dropped), so the trim kept the group whole.
        assert after[:2] == before[1:]
        assert [len(m.contents) and m.contents[0].type for m in await store.transcript()] == [
            "function_call",
            "function_result",
            "text",
        ]


async def test_rekey_while_others_append_and_trim_loses_nothing(redis_url: str, raw: redis.asyncio.Redis) -> None:
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=only_k1()) as old:
        await old.add_messages([user_message(f"old{i}") for i in range(320)])
    enc = k2_and_k1()
    async with (
        RedisChatMessageStore(redis_url, thread_id="t", encryption=enc) as rekeyer,
        # Already full: every append also trims, shifting every entry the rekey has read.
        RedisChatMessageStore(redis_url, thread_id="t", encryption=enc, max_messages=320) as writer,
    ):

        async def write() -> None:
            for i in range(60):
                await writer.add_messages([user_message(f"new{i}")])

        rekeyed, _ = await asyncio.gather(rekeyer.rekey(), write())
        assert 260 <= rekeyed <= 320  # the old entries not trimmed away before their swap
        assert await rekeyer.rekey() == 0
        expected = [f"old{i}" for i in range(320)] + [f"new{i}" for i in range(60)]
        assert texts(await rekeyer.list_messages()) == expected[-320:]
        assert {key_id_of(e) for e in await entries(raw, rekeyer.redis_key)} == {"k2"}


async def test_rekey_prefix_walks_only_that_prefix_and_reports_progress(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    # A glob character in the prefix must not widen the walk to other prefixes.
    for prefix in ("tenant*", "tenantX"):
        for n in range(4):
            async with RedisChatMessageStore(
                redis_url, thread_id=f"{prefix}-{n}", key_prefix=prefix, encryption=only_k1()
            ) as store:
                await store.add_messages([user_message("a"), user_message("b")])
    await raw.set("tenant*:{not-a-list}:registry", "other data")

    progress: list[RekeyProgress] = []
    report = await rekey_prefix(raw, k2_and_k1(), key_prefix="tenant*", on_progress=progress.append, scan_count=2)

    assert (report.threads_seen, report.threads_changed, report.entries_rekeyed) == (4, 4, 8)
    assert [p.threads_seen for p in progress] == [1, 2, 3, 4]
    assert sorted(p.thread_id or "" for p in progress) == [f"tenant*-{n}" for n in range(4)]
    for n in range(4):
        async with RedisChatMessageStore(redis_url, thread_id=f"tenant*-{n}", key_prefix="tenant*") as plain:
            assert [key_id_of(e) for e in await entries(raw, plain.redis_key)] == ["k2", "k2"]
        async with RedisChatMessageStore(redis_url, thread_id=f"tenantX-{n}", key_prefix="tenantX") as plain:
            assert [key_id_of(e) for e in await entries(raw, plain.redis_key)] == ["k1", "k1"]
    again = await rekey_prefix(raw, k2_and_k1(), key_prefix="tenant*")
    assert (again.threads_seen, again.entries_rekeyed) == (4, 0)


async def test_factory_stores_encrypt_and_state_never_holds_keys(redis_url: str, raw: redis.asyncio.Redis) -> None:
    enc = k2_and_k1()
    key_forms = [form for key in (KEY1, KEY2) for form in (key, key.hex().encode(), base64.b64encode(key))]
    async with RedisChatMessageStore.factory(redis_url, encryption=enc, ttl=60) as factory:
        store = factory.store("t")
        await store.add_messages([user_message(SECRET)])
        assert [key_id_of(e) for e in await entries(raw, store.redis_key)] == ["k2"]
        state = await store.serialize()
        shown = (json.dumps(state) + repr(store) + repr(factory) + repr(enc)).encode()
        assert not any(form in shown for form in key_forms)
        assert "k2" in repr(enc)
        with pytest.raises(TypeError, match="never serialized"):
            pickle.dumps(enc)
        restored = await RedisChatMessageStore.deserialize(state, redis_url=redis_url, encryption=enc)
        assert texts(await restored.list_messages()) == [SECRET]
        await restored.aclose()
        with pytest.raises(DecryptionError, match="no encryption="):
            await (await RedisChatMessageStore.deserialize(state, redis_client=raw)).list_messages()


@pytest.mark.parametrize(
    ("keys", "current", "error", "names"),
    [
        ({"k1": os.urandom(31)}, "k1", ValueError, r"keys\['k1'\] must be 16, 24 or 32 bytes long, got 31 bytes"),
        ({"k1": "c2VjcmV0c2VjcmV0c2VjcmV0"}, "k1", TypeError, r"keys\['k1'\] must be bytes, got str"),
        ({"k1": KEY1}, "k2", ValueError, r"current must be one of the key ids in keys \(k1\), got 'k2'"),
        ({"bad id": KEY1}, "bad id", ValueError, "every key id must be"),
        ({}, "k1", ValueError, "keys must hold at least one key"),
        ([("k1", KEY1)], "k1", TypeError, "keys must be a mapping"),
    ],
)
def test_bad_keys_are_named_without_showing_them(keys: object, current: str, error: type, names: str) -> None:
    with pytest.raises(error, match=names) as info:
        AESGCMEncryption(keys, current=current)  # type: ignore[arg-type]
    for value in keys.values() if isinstance(keys, dict) else []:
        assert str(value) not in str(info.value)


def test_encryption_option_is_checked_by_store_and_factory() -> None:
    with pytest.raises(TypeError, match="encryption must provide"):
        RedisChatMessageStore("redis://127.0.0.1:1", encryption="yes")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="encryption must provide"):
        RedisChatMessageStore.factory("redis://127.0.0.1:1", encryption=KEY1)  # type: ignore[arg-type]


def test_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    encoded = {key_id: base64.b64encode(key).decode() for key_id, key in (("k2", KEY2), ("k1", KEY1))}
    monkeypatch.setenv("REDIS_CHAT_STORE_KEYS", f"k2:{encoded['k2']}, k1:{encoded['k1']}")
    enc = AESGCMEncryption.from_env()
    assert (enc.key_id, enc.key_ids) == ("k2", ["k2", "k1"])
    assert AESGCMEncryption.from_env(current="k1").key_id == "k1"
    for text, names in [
        ("k1", "entry 1 must be '<key id>:<base64 key>'"),
        ("k1:not base64!", "the key of 'k1' is not valid base64"),
        ("k1:AAAA,k1:AAAA", "key id 'k1' is given twice"),
        ("", "holds no keys"),
    ]:
        with pytest.raises(ValueError, match=names):
            parse_keys(text, source="REDIS_CHAT_STORE_KEYS")


@pytest.mark.legacy
async def test_an_agent_resumes_an_encrypted_thread(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework import AgentThread  # pyright: ignore[reportAttributeAccessIssue]

    from .scripted import ScriptedChatClient, make_agent

    enc = k2_and_k1()
    async with RedisChatMessageStore.factory(redis_url, encryption=enc) as factory:
        agent = make_agent(ScriptedChatClient(), chat_message_store_factory=factory)
        thread = agent.get_new_thread()
        await agent.run(SECRET, thread=thread)
        state = await thread.serialize()
        key = thread.message_store.redis_key

    stored = await entries(raw, key)
    assert len(stored) == 2
    assert all(key_id_of(e) == "k2" and b"4111" not in e for e in stored)
    assert base64.b64encode(KEY2).decode() not in json.dumps(state)

    agent = make_agent(ScriptedChatClient())
    async with RedisChatMessageStore(redis_url, encryption=enc) as store:
        resumed = await AgentThread.deserialize(state, message_store=store)
        response = await agent.run("what did I tell you?", thread=resumed)
        assert response.text == f"seen 2: {SECRET} | what did I tell you?"
    assert all(key_id_of(e) == "k2" for e in await entries(raw, key))


async def test_repeats_are_recognised_with_keyed_fingerprints(redis_url: str, raw: redis.asyncio.Redis) -> None:
    turn = [
        message_from_dict({"role": role, "contents": [{"type": "text", "text": f"{role}: {SECRET}"}]})
        for role in ("user", "assistant")
    ]
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=k2_and_k1()) as store:
        assert await store.add_new_messages(turn) == 2
        assert await store.add_new_messages(turn) == 0  # a turn saved twice
        assert await store.add_new_messages([*turn, user_message("next")]) == 1  # a replayed transcript
        assert [key_id_of(e) for e in await entries(raw, store.redis_key)] == ["k2", "k2", "k2"]
        stored = [f[:FINGERPRINT_WIDTH] for f in await entries(raw, Keyspace("chat_messages").thread("t").fingerprints)]
        # Unkeyed fingerprints of the bodies would let anyone with Redis access test guesses.
        unkeyed = [fingerprint(m.to_dict(exclude_none=True)) for m in turn]
        assert stored[:2] != unkeyed
        assert not set(stored) & set(unkeyed)
        assert texts(await store.list_messages()) == [f"user: {SECRET}", f"assistant: {SECRET}", "next"]


async def test_repeats_saved_before_a_rotation_are_still_recognised(redis_url: str) -> None:
    turn = [message_from_dict({"role": r, "contents": [{"type": "text", "text": r}]}) for r in ("user", "assistant")]
    later = message_from_dict({"role": "user", "contents": [{"type": "text", "text": "later"}]})
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=only_k1()) as old:
        assert await old.add_new_messages(turn) == 2
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=k2_and_k1()) as rotated:
        assert await rotated.rekey() == 2
        # The fingerprints were keyed by k1 and now by k2: k1's (a retired key) still recognise
        # the replay, which stores only what is new and rewrites them under k2.
        assert await rotated.add_new_messages([*turn, later]) == 1
        assert await rotated.count() == 3
    new_only = AESGCMEncryption({"k2": KEY2}, current="k2")
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=new_only) as retired:
        assert await retired.add_new_messages([*turn, later]) == 0  # without k1 at all
        assert texts(await retired.list_messages()) == ["user", "assistant", "later"]


@pytest.mark.current
async def test_the_history_provider_encrypts(redis_url: str, raw: redis.asyncio.Redis) -> None:
    from agent_framework_redis_store import RedisChatHistoryProvider

    from .scripted import ScriptedChatClient, make_agent

    async with RedisChatHistoryProvider(redis_url, encryption=k2_and_k1()) as history:
        agent = make_agent(ScriptedChatClient(), context_providers=[history])
        session = agent.create_session(session_id="alice")
        await agent.run(SECRET, session=session)
        answer = await agent.run("what did I say?", session=session)
        assert answer.text == f"seen 2: {SECRET} | what did I say?"
        stored = await entries(raw, history.store_for("alice").redis_key)
        assert len(stored) == 4
        assert all(key_id_of(e) == "k2" and b"4111" not in e for e in stored)


async def _round_trip_and_move(url: str, thread_id: str, other_id: str, text: str) -> tuple[list, str]:
    enc = k2_and_k1()
    async with (
        RedisChatMessageStore(url, thread_id=thread_id, encryption=enc) as store,
        RedisChatMessageStore(url, thread_id=other_id, encryption=enc) as other,
    ):
        await store.clear()
        await other.clear()
        await store.add_messages([user_message(text)])
        loaded = await store.list_messages()
        await other.redis_client.rpush(other.redis_key, await store.redis_client.lindex(store.redis_key, 0))  # type: ignore[misc]
        try:
            await other.list_messages()
            moved = "decrypted"
        except DecryptionError as err:
            moved = err.reason
        await store.clear()
        await other.clear()
    return loaded, moved


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.text(min_size=1, max_size=100), min_size=2, max_size=2, unique=True), text=st.text())
def test_any_text_in_any_thread_round_trips_and_never_opens_elsewhere(
    redis_server: EmbeddedRedis, ids: list[str], text: str
) -> None:
    loaded, moved = asyncio.run(_round_trip_and_move(redis_server.url, ids[0], ids[1], text))
    assert texts(loaded) == [text]
    assert "another thread" in moved


# -- redis-chat-store threads rekey -----------------------------------------------------------


async def test_cli_rekeys_a_prefix_with_keys_from_the_environment(
    redis_url: str, raw: redis.asyncio.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    from .test_cli_threads import cli, cli_json

    for prefix, thread_id in (("app", "a"), ("app", "b"), ("other", "c")):
        async with RedisChatMessageStore(
            redis_url, thread_id=thread_id, key_prefix=prefix, encryption=only_k1()
        ) as store:
            await store.add_messages([user_message(SECRET), user_message("more")])
    # A tampered entry in another prefix stops that walk with one line naming the entry.
    async with RedisChatMessageStore(redis_url, thread_id="c", key_prefix="other") as other:
        tampered = (await entries(raw, other.redis_key))[1][:-8] + b"AAAAAAA="
        await raw.lset(other.redis_key, 1, tampered)  # type: ignore[misc]

    missing = await asyncio.to_thread(cli, redis_url, "threads", "--key-prefix", "app", "rekey")
    assert missing.returncode == 1
    assert "REDIS_CHAT_STORE_KEYS holds no keys" in missing.stderr

    encoded = [base64.b64encode(key).decode() for key in (KEY2, KEY1)]
    monkeypatch.setenv("REDIS_CHAT_STORE_KEYS", f"k2:{encoded[0]},k1:{encoded[1]}")
    report, failed, empty, shown = await asyncio.gather(
        asyncio.to_thread(cli_json, redis_url, "threads", "--key-prefix", "app", "rekey", "--current", "k2"),
        asyncio.to_thread(cli, redis_url, "threads", "--key-prefix", "other", "rekey"),
        asyncio.to_thread(cli, redis_url, "threads", "--key-prefix", "empty", "rekey"),
        asyncio.to_thread(cli, redis_url, "threads", "--key-prefix", "app", "show", "b"),  # reads with the keys
    )
    assert report == {
        "key_prefix": "app", "current_key_id": "k2", "threads": 2, "threads_changed": 2, "entries_rekeyed": 4,
        "checkpoints_rekeyed": 0, "skipped": [],
    }  # fmt: skip
    async with RedisChatMessageStore(
        redis_url, thread_id="a", key_prefix="app", encryption=AESGCMEncryption({"k2": KEY2}, current="k2")
    ) as new_only:
        assert texts(await new_only.list_messages()) == [SECRET, "more"]
    assert failed.returncode == 1
    assert "Cannot decrypt the entry in Redis list 'other:{c}' at index 1" in failed.stderr
    assert not any(key in failed.stderr + failed.stdout for key in encoded)
    assert [key_id_of(e) for e in await entries(raw, "other:{c}")] == ["k1", "k1"]  # nothing written
    assert empty.returncode == 0
    assert "re-encrypted 0 entries in 0 of 0 thread(s) with key 'k2'" in empty.stdout
    assert shown.returncode == 0, shown.stderr
    assert SECRET in shown.stdout


async def test_registry_exports_decrypted_and_imports_encrypted_for_the_new_thread(
    redis_url: str, raw: redis.asyncio.Redis
) -> None:
    from agent_framework_redis_store import RedisThreadRegistry

    enc = k2_and_k1()
    async with RedisChatMessageStore(redis_url, thread_id="t", encryption=only_k1()) as store:
        await store.add_messages([user_message(SECRET)])
    async with RedisThreadRegistry(redis_url) as without_keys:
        with pytest.raises(DecryptionError, match=r"'chat_messages:\{t\}' at index 0: it is encrypted \(key id 'k1'\)"):
            await without_keys.export_thread("t")
    async with (
        RedisThreadRegistry(redis_url, encryption=enc) as source,
        RedisThreadRegistry(redis_url, key_prefix="restored", encryption=enc) as target,
    ):
        record = await source.export_thread("t")
        assert [m["contents"][0]["text"] for m in record.messages] == [SECRET]
        assert await target.import_thread(record)
    async with RedisChatMessageStore(redis_url, thread_id="t", key_prefix="restored", encryption=enc) as restored:
        assert [key_id_of(e) for e in await entries(raw, restored.redis_key)] == ["k2"]  # bound to its new key
        assert texts(await restored.list_messages()) == [SECRET]
