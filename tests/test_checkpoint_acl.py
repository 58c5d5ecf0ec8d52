"""The ACL rules docs/CHECKPOINTS.md gives a checkpoint writer and operator, exactly, on a private redis-server.

The rules are read from the page's "ACL rules for a checkpoint writer" section (so what users copy
is what is tested), given to users of a server of this module's own, and every operation of the
role runs as that user: each succeeds, the commands the server counted are exactly those granted,
and the user can reach no thread.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio

from agent_framework_redis_store import (
    AESGCMEncryption,
    RedisChatMessageStore,
    RedisCheckpointStorage,
    RedisPermissionError,
)
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import user_message
from .test_checkpoints import CURRENT, make_checkpoint
from .test_cli_threads import cli_here
from .test_tls_acl import documented_acl_users

DOC = Path(__file__).resolve().parent.parent / "docs" / "CHECKPOINTS.md"
DOC_PREFIX = "chat_messages"
PREFIX = "app"
PASSWORD = "ckpt-secret-pw"
WRITER, OPERATOR = "checkpoint_writer", "checkpoint_operator"
# redis-py's handshake (AUTH, HELLO: they need no permission), the eviction-policy check (INFO,
# optional), and the test's own admin connection.
NOT_THE_ROLES = {"auth", "hello", "info", "config|resetstat"}
KEY = b"1" * 32
ENCRYPTION = AESGCMEncryption({"k1": KEY}, current="k1")


def documented_users() -> dict[str, list[str]]:
    """docs/CHECKPOINTS.md's ACL users: user -> rules."""
    return documented_acl_users(DOC, "ACL rules for a checkpoint writer")


def role_rules(user: str) -> list[str]:
    """The page's rules of ``user``, with the test's password and prefix."""
    rules = documented_users()[user]
    assert ">PASSWORD" in rules
    return [
        f">{PASSWORD}" if rule == ">PASSWORD" else rule.replace(f"~{DOC_PREFIX}:", f"~{PREFIX}:", 1) for rule in rules
    ]


def granted_commands(rules: list[str]) -> set[str]:
    return {rule[1:] for rule in rules if rule.startswith("+")}


def user_url(server: EmbeddedRedis, user: str) -> str:
    return f"redis://{user}:{PASSWORD}@127.0.0.1:{server.port}/0"


def used_commands(server: EmbeddedRedis) -> set[str]:
    with redis.Redis.from_url(server.url) as admin:
        stats: dict[str, Any] = admin.info("commandstats")  # type: ignore[assignment]
    return {name.removeprefix("cmdstat_") for name, row in stats.items() if row["calls"]} - NOT_THE_ROLES


@pytest.fixture(scope="module")
def server() -> Iterator[EmbeddedRedis]:
    with EmbeddedRedis() as server:
        yield server


@pytest.fixture
def prepared(server: EmbeddedRedis) -> EmbeddedRedis:
    with redis.Redis.from_url(server.url) as admin:
        admin.flushall()
        for user in (WRITER, OPERATOR):
            admin.execute_command("ACL", "SETUSER", user, "reset", *role_rules(user))
    return server


def test_the_page_gives_both_roles() -> None:
    assert set(documented_users()) == {WRITER, OPERATOR}


async def run_workflows(url: str) -> None:
    """Every operation of the storage, in the installed generation's spelling and the other's."""
    async with RedisCheckpointStorage(url, key_prefix=PREFIX, keep_last=3, ttl=600, encryption=ENCRYPTION) as storage:
        saved = [make_checkpoint("refund", second=s) for s in range(5)]
        for checkpoint in saved:
            await (storage.save(checkpoint) if CURRENT else storage.save_checkpoint(checkpoint))
        ids = [c.checkpoint_id for c in saved]
        assert await storage.list_checkpoint_ids(workflow_name="refund") == ids[2:]
        assert (await storage.load(ids[4])).checkpoint_id == ids[4]
        assert await storage.load_checkpoint(ids[0]) is None  # trimmed
        latest = await storage.get_latest(workflow_name="refund")
        assert latest is not None
        assert latest.checkpoint_id == ids[4]
        assert len(await storage.list_checkpoints(workflow_name="refund")) == 3
        assert [c.checkpoint_id async for c in storage.iter_checkpoints("refund", page_size=1)] == ids[:1:-1]
        assert [c.checkpoint_id async for c in storage.iter_checkpoints("refund", page_size=2, newest_first=False)] == (
            ids[2:]
        )
        assert await storage.delete(ids[4]) is True
        assert await storage.delete_checkpoint(ids[4]) is False
    async with RedisCheckpointStorage(url, key_prefix=PREFIX) as plain:  # no ttl: keys made persistent
        await plain.save(make_checkpoint("audit", second=1))
        assert sorted(await plain.list_checkpoint_ids()) == sorted(
            [*ids[2:4], *await plain.list_checkpoint_ids("audit")]
        )
        assert len(await plain.list_checkpoints(workflow_name="audit")) == 1


async def cannot_reach_threads(url: str) -> None:
    async with RedisChatMessageStore(url, key_prefix=PREFIX, thread_id="t") as store:
        with pytest.raises(RedisPermissionError):
            await store.add_messages([user_message("hi")])
        with pytest.raises(RedisPermissionError):
            await store.list_messages()


def reset_statistics(server: EmbeddedRedis) -> None:
    with redis.Redis.from_url(server.url) as admin:
        admin.config_resetstat()


def test_a_checkpoint_writer_runs_every_storage_operation_with_exactly_the_page_s_rules(
    prepared: EmbeddedRedis,
) -> None:
    reset_statistics(prepared)
    asyncio.run(run_workflows(user_url(prepared, WRITER)))
    used, granted = used_commands(prepared), granted_commands(role_rules(WRITER))
    assert used == granted, (f"not granted: {sorted(used - granted)}", f"never used: {sorted(granted - used)}")
    asyncio.run(cannot_reach_threads(user_url(prepared, WRITER)))


def test_a_checkpoint_operator_runs_every_cli_command_with_exactly_the_page_s_rules(prepared: EmbeddedRedis) -> None:
    asyncio.run(run_workflows(prepared.url))  # written by the admin: refund (2 sealed), audit (1)

    async def sealed_ids() -> list[str]:
        async with RedisCheckpointStorage(prepared.url, key_prefix=PREFIX) as storage:
            return await storage.list_checkpoint_ids(workflow_name="refund")

    refund = asyncio.run(sealed_ids())
    with redis.Redis.from_url(prepared.url) as admin:
        admin.delete(f"{PREFIX}:{{wf:audit}}:checkpoints", f"{PREFIX}:{{wf:audit}}:timeline")  # expired
    reset_statistics(prepared)
    url = user_url(prepared, OPERATOR)
    env = {ENCRYPTION.ENV_VAR: "k1:" + base64.b64encode(KEY).decode()}
    for command in (
        ["list"],
        ["list", "--workflow", "refund", "--limit", "1"],
        ["list", "--workflow", "refund", "--limit", "1", "--cursor", "1:x"],
        ["show", refund[0]],
        ["stats"],
        ["sweep"],
        ["delete", refund[0], "--yes"],
        ["prune", "--workflow", "refund", "--keep", "0", "--yes"],
    ):
        done = cli_here(url, "checkpoints", "--key-prefix", PREFIX, *command, "--json", env=env)
        assert done.returncode == 0, (command, done.stderr)
    used, granted = used_commands(prepared), granted_commands(role_rules(OPERATOR))
    assert used == granted, (f"not granted: {sorted(used - granted)}", f"never used: {sorted(granted - used)}")
    with redis.Redis.from_url(prepared.url) as admin:
        assert admin.hlen(f"{PREFIX}:checkpoints") == 0  # swept, deleted, pruned
    asyncio.run(cannot_reach_threads(url))


def test_the_writer_cannot_touch_another_prefix(prepared: EmbeddedRedis) -> None:
    async def main() -> None:
        async with RedisCheckpointStorage(user_url(prepared, WRITER), key_prefix="billing") as storage:
            with pytest.raises(RedisPermissionError, match="billing"):
                await storage.save(make_checkpoint("refund"))

    asyncio.run(main())


def test_rekey_by_the_thread_operator_needs_hscan_for_checkpoints_and_says_so(prepared: EmbeddedRedis) -> None:
    from agent_framework_redis_store import rekey_prefix

    from .test_tls_acl import OPERATOR as THREAD_OPERATOR
    from .test_tls_acl import role_rules as thread_role_rules
    from .test_tls_acl import user_url as thread_user_url  # the thread rules carry that module's password

    rotated = AESGCMEncryption({"k2": b"2" * 32, "k1": KEY}, current="k2")
    thread_rules = thread_role_rules(THREAD_OPERATOR, PREFIX)
    assert "+hscan" not in thread_rules  # as docs/SECURITY.md gives them: threads only

    async def main() -> None:
        async with RedisCheckpointStorage(prepared.url, key_prefix=PREFIX, encryption=ENCRYPTION) as storage:
            await storage.save(make_checkpoint("refund"))
            keys = storage.workflow_keys("refund")
        async with RedisChatMessageStore(
            prepared.url, key_prefix=PREFIX, thread_id="t", encryption=ENCRYPTION
        ) as store:
            await store.add_messages([user_message("hi")])
        for user, rules, rekeyed in (
            ("thread_operator", thread_rules, 0),
            ("thread_operator_with_hscan", [*thread_rules, "+hscan"], 1),
        ):
            with redis.Redis.from_url(prepared.url) as admin:
                admin.execute_command("ACL", "SETUSER", user, "reset", *rules)
            async with redis.asyncio.Redis.from_url(thread_user_url(prepared, user)) as client:
                progress = await rekey_prefix(client, rotated, key_prefix=PREFIX)
            assert progress.checkpoints_rekeyed == rekeyed
            if rekeyed:
                assert progress.skipped == ()
            else:
                assert progress.entries_rekeyed == 1  # the thread all the same
                assert [key for key, _ in progress.skipped] == [keys.checkpoints]
                assert "grant +hscan" in progress.skipped[0][1]

    asyncio.run(main())
