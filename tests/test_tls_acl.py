"""TLS with client certificates, ACL users limited to a key prefix, and credential providers.

Each test talks to a redis-server of this module's own: one with TLS (CA, server and client
certificates generated here), one with ACL users.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import datetime
import ipaddress
import json
import os
import re
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

import pytest
import redis
import redis.asyncio
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.credentials import CredentialProvider

from agent_framework_redis_store import (
    GENERATION,
    AESGCMEncryption,
    Keyspace,
    RedisChatMessageStore,
    RedisPermissionError,
    RedisStoreError,
    RedisThreadRegistry,
    RedisUnavailableError,
    SummaryCompaction,
    ThreadRecord,
    migrate_agent_framework_redis,
    migrate_langchain,
    redact_url,
    rekey_prefix,
)
from agent_framework_redis_store._testing.embedded import _free_port
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import user_message
from .test_cli_threads import cli_here

APP_PASSWORD = "app-secret-pw"


def texts(messages: list) -> list[str]:
    return [m.text for m in messages]


def no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


# -- certificates -------------------------------------------------------------------------


def _write(path: Path, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> tuple[str, str]:
    key_file, cert_file = path.with_suffix(".key"), path.with_suffix(".crt")
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return str(cert_file), str(key_file)


def _certificate(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None, issuer_key: ec.EllipticCurvePrivateKey
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if name == "server" else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if name == "server":
            names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def make_pki(directory: Path) -> dict[str, str]:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM files."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("test-ca", ca_key, None, ca_key)
    files: dict[str, str] = {}
    files["ca"], _ = _write(directory / "ca", ca_key, ca)
    for name in ("server", "client"):
        key = ec.generate_private_key(ec.SECP256R1())
        files[f"{name}_cert"], files[f"{name}_key"] = _write(directory / name, key, _certificate(name, key, ca, ca_key))
    other = ec.generate_private_key(ec.SECP256R1())
    files["other_ca"], _ = _write(directory / "other_ca", other, _certificate("other-ca", other, None, other))
    return files


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(pki: dict[str, str]) -> Iterator[tuple[EmbeddedRedis, int]]:
    """A redis-server that requires TLS with a client certificate on its TLS port.

    Its plain port stays open on loopback only so that EmbeddedRedis can see it is ready;
    every test connects to the TLS port.
    """
    tls_port = _free_port()
    server = EmbeddedRedis(
        extra_args=[
            "--tls-port", str(tls_port),
            "--tls-cert-file", pki["server_cert"],
            "--tls-key-file", pki["server_key"],
            "--tls-ca-cert-file", pki["ca"],
            "--tls-auth-clients", "yes",
        ]
    )  # fmt: skip
    try:
        server.start()
    except RuntimeError as err:
        if "tls-port" in str(err) and "Bad directive" in str(err):
            pytest.skip(f"{server.binary} was built without TLS support ({str(err).splitlines()[-1]})")
        raise
    try:
        yield server, tls_port
    finally:
        server.stop()


def tls_url(port: int, ca: str, cert: str | None = None, key: str | None = None) -> str:
    query = f"ssl_ca_certs={quote(ca)}"
    if cert is not None and key is not None:
        query += f"&ssl_certfile={quote(cert)}&ssl_keyfile={quote(key)}"
    return f"rediss://127.0.0.1:{port}/0?{query}"


# -- TLS ----------------------------------------------------------------------------------


async def test_store_over_tls_with_client_certificate(
    tls_server: tuple[EmbeddedRedis, int], pki: dict[str, str]
) -> None:
    _, port = tls_server
    url = tls_url(port, pki["ca"], pki["client_cert"], pki["client_key"])
    async with RedisChatMessageStore(url, thread_id="t") as store:
        assert await store.ping()
        await store.add_messages([user_message("over tls")])
        assert texts(await store.list_messages()) == ["over tls"]
    async with RedisChatMessageStore.factory(url) as factory:
        assert texts(await factory.store("t").list_messages()) == ["over tls"]
        assert "ssl_ca_certs" in repr(factory)  # file paths are shown; they are not secrets


async def test_tls_is_enforced_both_ways(tls_server: tuple[EmbeddedRedis, int], pki: dict[str, str]) -> None:
    _, port = tls_server
    # No client certificate: the server refuses the handshake.
    async with RedisChatMessageStore(tls_url(port, pki["ca"]), thread_id="t", retry=no_retry()) as anonymous:
        assert not await anonymous.ping()
        with pytest.raises(RedisUnavailableError, match="unreachable"):
            await anonymous.list_messages()
    # A server certificate from a CA the client does not trust: the client refuses.
    untrusted = tls_url(port, pki["other_ca"], pki["client_cert"], pki["client_key"])
    async with RedisChatMessageStore(untrusted, thread_id="t", retry=no_retry()) as store:
        with pytest.raises(RedisUnavailableError, match="certificate verify failed"):
            await store.count()
    # Plain text to the TLS port gets nowhere.
    async with RedisChatMessageStore(f"redis://127.0.0.1:{port}/0", thread_id="t", retry=no_retry()) as plain:
        assert not await plain.ping()


def test_secrets_in_url_query_parameters_are_redacted() -> None:
    url = "rediss://app:pw1@127.0.0.1:6380/0?ssl_ca_certs=/etc/ca.pem&ssl_password=keypw&password=pw2"
    shown = redact_url(url)
    assert shown == "rediss://***@127.0.0.1:6380/0?ssl_ca_certs=/etc/ca.pem&ssl_password=***&password=***"
    store = RedisChatMessageStore(url, thread_id="t")
    assert not any(secret in repr(store) for secret in ("pw1", "keypw", "pw2"))


# -- ACLs ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acl_server() -> Iterator[EmbeddedRedis]:
    """A redis-server with the documented application user ``app`` and operator ``app-admin``, for prefix ``app``."""
    with EmbeddedRedis() as server, redis.Redis.from_url(server.url) as admin:
        admin.execute_command("ACL", "SETUSER", "app", *role_rules(WRITER, "app"))
        admin.execute_command("ACL", "SETUSER", "app-admin", *role_rules(OPERATOR, "app"))
        yield server


@pytest.fixture
def clean_acl_server(acl_server: EmbeddedRedis) -> EmbeddedRedis:
    with redis.Redis.from_url(acl_server.url) as admin:
        admin.flushall()
    return acl_server


def app_url(server: EmbeddedRedis, user: str = "app") -> str:
    return f"redis://{user}:{APP_PASSWORD}@127.0.0.1:{server.port}/0"


async def test_acl_user_limited_to_its_prefix_runs_every_store_operation(clean_acl_server: EmbeddedRedis) -> None:
    encryption = AESGCMEncryption({"k1": os.urandom(16)}, current="k1")
    async with RedisChatMessageStore(
        app_url(clean_acl_server), key_prefix="app", thread_id="t", ttl=60, max_messages=3,
        messages=[user_message("seed")], encryption=encryption,
    ) as store:  # fmt: skip
        assert await store.ping()
        for text in ("a", "b", "c"):
            await store.add_messages([user_message(text)], idempotency_key=f"batch-{text}")
        await store.add_messages([user_message("c")], idempotency_key="batch-c")  # a retry: not stored twice
        assert texts(await store.list_messages()) == ["a", "b", "c"]
        assert texts(await store.list_messages(last=1)) == ["c"]
        assert await store.count() == 3
        turn = [user_message("d"), user_message("e")]  # the 1.x provider's save path
        assert await store.add_new_messages(turn) == 2
        assert await store.add_new_messages(turn) == 0
        assert texts(await store.list_messages()) == ["c", "d", "e"]
        assert await store.rekey() == 0
        await store.clear()
        assert await store.count() == 0


async def test_acl_user_cannot_read_or_write_another_prefix(clean_acl_server: EmbeddedRedis) -> None:
    async with RedisChatMessageStore(clean_acl_server.url, key_prefix="billing", thread_id="t") as admin_store:
        await admin_store.add_messages([user_message("someone else's data")])
    async with RedisChatMessageStore(app_url(clean_acl_server), key_prefix="billing", thread_id="t") as intruder:
        for operation in (intruder.list_messages, intruder.count, intruder.clear):
            with pytest.raises(RedisPermissionError, match=r"refused the user access to 'billing:\{t\}'") as info:
                await operation()
            assert APP_PASSWORD not in str(info.value)
        with pytest.raises(RedisPermissionError, match=r"'billing:\{t\}'"):
            await intruder.add_messages([user_message("planted")])
    async with RedisChatMessageStore(clean_acl_server.url, key_prefix="billing", thread_id="t") as admin_store:
        assert texts(await admin_store.list_messages()) == ["someone else's data"]


async def test_a_command_missing_from_the_acl_is_a_permission_error(acl_server: EmbeddedRedis) -> None:
    with redis.Redis.from_url(acl_server.url) as admin:
        admin.execute_command("ACL", "SETUSER", "reader", "on", f">{APP_PASSWORD}", "~app:*", "-@all", "+evalsha")
    async with RedisChatMessageStore(app_url(acl_server, "reader"), key_prefix="app", thread_id="t") as store:
        with pytest.raises(RedisPermissionError, match=r"'app:\{t\}'.*can't run this command"):
            await store.add_messages([user_message("x")])  # RPUSH inside the script is refused
        assert not await store.ping()


async def test_rekey_prefix_as_a_prefix_limited_user(clean_acl_server: EmbeddedRedis) -> None:
    key1 = os.urandom(16)
    old = AESGCMEncryption({"k1": key1}, current="k1")
    for n in range(3):
        async with RedisChatMessageStore(
            app_url(clean_acl_server), key_prefix="app", thread_id=f"t{n}", encryption=old
        ) as store:
            await store.add_messages([user_message(f"m{n}")])
    new = AESGCMEncryption({"k2": os.urandom(32), "k1": key1}, current="k2")
    async with redis.asyncio.Redis.from_url(app_url(clean_acl_server, "app-admin")) as client:
        report = await rekey_prefix(client, new, key_prefix="app")
    assert (report.threads_seen, report.entries_rekeyed) == (3, 3)


# -- credential providers -----------------------------------------------------------------


class RotatingCredentials(CredentialProvider):
    """Like Azure's token providers: asked for (username, password) whenever a connection opens."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password, self.calls = username, password, 0

    def get_credentials(self) -> tuple[str, str]:
        self.calls += 1
        return self.username, self.password


async def test_credential_provider_authenticates_an_acl_user(clean_acl_server: EmbeddedRedis) -> None:
    url = f"redis://127.0.0.1:{clean_acl_server.port}/0"
    credentials = RotatingCredentials("app", APP_PASSWORD)
    async with RedisChatMessageStore.factory(url, credential_provider=credentials, key_prefix="app") as factory:
        await factory.store("t").add_messages([user_message("hello")])
        assert texts(await factory.store("t").list_messages()) == ["hello"]
        assert credentials.calls >= 1
        assert "app-secret" not in repr(factory)
    # The password rotates on the server and in the provider: new connections use the new one.
    with redis.Redis.from_url(clean_acl_server.url) as admin:
        admin.execute_command("ACL", "SETUSER", "app", "resetpass", ">rotated-pw")
    try:
        credentials.password = "rotated-pw"
        async with RedisChatMessageStore(url, credential_provider=credentials, key_prefix="app", thread_id="t") as new:
            assert texts(await new.list_messages()) == ["hello"]
        credentials.password = APP_PASSWORD
        async with RedisChatMessageStore(
            url, credential_provider=credentials, key_prefix="app", thread_id="t", retry=no_retry()
        ) as stale:
            with pytest.raises(RedisStoreError, match="rejected the credentials") as info:
                await stale.count()
            assert APP_PASSWORD not in str(info.value)
    finally:
        with redis.Redis.from_url(clean_acl_server.url) as admin:
            admin.execute_command("ACL", "SETUSER", "app", "resetpass", f">{APP_PASSWORD}")


# -- ACL roles: the documented rules, exactly -----------------------------------------------
#
# docs/SECURITY.md's "TLS, ACLs and credential providers" section gives one ``ACL SETUSER`` per role
# for the prefix ``chat_messages``. These tests read them from there (so what users copy is
# what is tested), give them to users of a private server, and run every operation of the role
# as that user: each succeeds, and the commands the server counted are exactly those granted.

ACL_DOC = Path(__file__).resolve().parent.parent / "docs" / "SECURITY.md"
DOC_PREFIX = "chat_messages"
READER, WRITER, OPERATOR, SOURCE = "chat_reader", "chat_app", "chat_operator", "chat_migrate_source"
# redis-py's handshake (AUTH, HELLO: they need no permission), and the test's admin connection.
NOT_THE_ROLES = {"auth", "hello", "info", "config|resetstat"}
_KEY1, _KEY2 = os.urandom(16), os.urandom(32)
ENCRYPTION = AESGCMEncryption({"k1": _KEY1}, current="k1")
ROTATED = AESGCMEncryption({"k2": _KEY2, "k1": _KEY1}, current="k2")
_KEYS = (("k2", _KEY2), ("k1", _KEY1))  # as $REDIS_CHAT_STORE_KEYS lists them, current first


def documented_acl_users(
    document: Path = ACL_DOC, section_title: str = "TLS, ACLs and credential providers"
) -> dict[str, list[str]]:
    """A docs section's ``ACL SETUSER <user> <rules...>`` commands (continued on indented lines): user -> rules."""
    text = document.read_text(encoding="utf-8")
    section = text.split(f"\n## {section_title}\n", 1)[1].split("\n## ", 1)[0]
    users: dict[str, list[str]] = {}
    rules: list[str] | None = None
    for block in re.findall(r"```\n(.*?)```", section, flags=re.DOTALL):
        for line in block.splitlines():
            words = line.split()
            if words[:2] == ["ACL", "SETUSER"]:
                rules = users.setdefault(words[2], [])
                rules += words[3:]
            elif rules is not None and line.startswith(" ") and words:
                rules += words
    return users


def role_rules(user: str, prefix: str | None = None) -> list[str]:
    """The documented rules of ``user`` with the test's password (and ``prefix`` for chat_messages)."""
    rules = documented_acl_users()[user]
    assert ">PASSWORD" in rules

    def ours(rule: str) -> str:
        if rule == ">PASSWORD":
            return f">{APP_PASSWORD}"
        return rule if prefix is None else rule.replace(f"~{DOC_PREFIX}:", f"~{prefix}:", 1)

    return [ours(rule) for rule in rules]


def granted_commands(rules: list[str]) -> set[str]:
    return {rule[1:] for rule in rules if rule.startswith("+")}


def user_url(server: EmbeddedRedis, user: str) -> str:
    return f"redis://{user}:{APP_PASSWORD}@127.0.0.1:{server.port}/0"


class Summarizer:
    """A model that answers every summary request at once."""

    async def get_response(self, request: Any) -> Any:
        return SimpleNamespace(text="the earlier turns")


def compaction() -> SummaryCompaction:
    return SummaryCompaction(Summarizer(), trigger_messages=3, keep_last_messages=1, background=False)


def old_record(thread_id: str, labels: dict[str, str]) -> ThreadRecord:
    long_ago = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    message = user_message(f"{thread_id} long ago").to_dict(exclude_none=True)
    return ThreadRecord(thread_id, [message], labels, long_ago, long_ago, None, None)


FILLER = 510  # more threads than a page of the registry walks (500): they continue past it


async def seed(url: str, prefix: str, encryption: AESGCMEncryption) -> None:
    """What the roles work on, written by an unrestricted user: threads with labels, a TTL, a
    summary and a session snapshot, an old thread, an expired one (its registry entry left
    behind), and enough others that every walk of the registry takes more than one page."""
    async with RedisChatMessageStore(
        url, thread_id="t1", key_prefix=prefix, labels={"user": "alice"}, compaction=compaction(),
        encryption=encryption,
    ) as store:  # fmt: skip
        await store.add_messages([user_message(f"m{n}") for n in range(4)])
        await store.compact(force=True)
    for thread_id, labels in (("t2", {"user": "bob"}), ("gone", {"user": "bob"})):
        async with RedisChatMessageStore(
            url, thread_id=thread_id, key_prefix=prefix, labels=labels, encryption=encryption, ttl=3600
        ) as store:
            await store.add_messages([user_message("hello")])
    async with RedisThreadRegistry(url, key_prefix=prefix, encryption=encryption) as registry:
        assert await registry.import_thread(old_record("old", {"user": "carol"}))
        message = user_message("filler").to_dict(exclude_none=True)
        for start in range(0, FILLER, 100):
            records = [
                ThreadRecord(f"f{n}", [message], {}, None, None, None, None)
                for n in range(start, min(start + 100, FILLER))
            ]
            await asyncio.gather(*(registry.import_thread(record) for record in records))
        async with redis.asyncio.Redis.from_url(url) as admin:
            await admin.delete(*registry.keyspace.thread("gone").owned)  # expired: the entries stay
    if GENERATION == "current":
        from agent_framework import AgentSession

        from agent_framework_redis_store import RedisSessionStore

        async with RedisSessionStore(url, key_prefix=prefix, encryption=encryption) as sessions:
            await sessions.set("t1", AgentSession(session_id="t1"))


async def seed_sources(url: str) -> None:
    """A LangChain history and Microsoft's legacy store's threads, for ``migrate`` to copy."""
    from .test_migrate import LEGACY, fixture

    async with redis.asyncio.Redis.from_url(url) as client:
        for text, kind in (("hi there", "ai"), ("hello", "human")):
            entry = json.dumps({"type": kind, "data": {"type": kind, "content": text}})
            await client.rpush("message_store:lc-1", entry)
        for key, entries in fixture(LEGACY)["keys"].items():
            await client.rpush(key, *entries)


async def read_everything(url: str, prefix: str, encryption: AESGCMEncryption) -> None:
    """The read-only role: list and read threads, their summaries and session snapshots."""
    async with RedisThreadRegistry(url, key_prefix=prefix, encryption=encryption) as registry:
        first = await registry.list_threads(limit=2)
        assert len(first.threads) == 2
        second = await registry.list_threads(limit=2, cursor=first.next_cursor)
        assert not {t.thread_id for t in first.threads} & {t.thread_id for t in second.threads}
        alices = await registry.list_threads(labels={"user": "alice"}, active_since=datetime.timedelta(days=1))
        assert [t.thread_id for t in alices.threads] == ["t1"]
        assert len([t async for t in registry.iter_threads()]) == FILLER + 3
        assert await registry.count() >= FILLER + 3
        assert await registry.missing(["t1", "nope"]) == ["nope"]
        assert (await registry.info("t1")).labels == {"user": "alice"}
        assert (await registry.stats()).threads == FILLER + 3
        assert len((await registry.export_thread("t1")).messages) == 4
        await registry.now()
    async with RedisChatMessageStore(url, thread_id="t1", key_prefix=prefix, encryption=encryption) as store:
        assert await store.ping()
        assert texts(await store.transcript()) == ["m0", "m1", "m2", "m3"]
        assert len(await store.list_messages()) == 2  # the summary and the newest message
        assert texts(await store.list_messages(last=1))[-1] == "m3"
        assert await store.count() == 4
        assert await store.summary() is not None
        assert (await store.info()).message_count == 4
        assert (await store.getitem(0)).text == "m0"
        assert await store.index(await store.getitem(2)) == 2
    async with RedisChatMessageStore(
        url, thread_id="t1", key_prefix=prefix, encryption=encryption, context_messages=1, context_tokens=1000
    ) as windowed:
        assert len(await windowed.list_messages()) == 2
    if GENERATION == "current":
        from agent_framework_redis_store import RedisChatHistoryProvider, RedisSessionStore

        async with RedisSessionStore(url, key_prefix=prefix, encryption=encryption) as sessions:
            assert await sessions.get("t1") is not None
        async with RedisChatHistoryProvider(url, key_prefix=prefix, encryption=encryption) as provider:
            assert len(await provider.get_messages("t1")) == 2
            assert len(await provider.transcript("t1")) == 4


async def write_as_an_app(url: str, prefix: str, encryption: AESGCMEncryption) -> None:
    """The writer role: what an application's store, provider and session store do."""
    async with RedisChatMessageStore(
        url, thread_id="w1", key_prefix=prefix, labels={"user": "dave"}, ttl=600, max_messages=6,
        encryption=encryption, compaction=compaction(), context_messages=4,
    ) as store:  # fmt: skip
        assert await store.ping()
        for n in range(3):
            await store.add_messages([user_message(f"w{n}")], idempotency_key=f"turn-{n}")
        await store.add_messages([user_message("w2")], idempotency_key="turn-2")  # a retry: stored once
        assert await store.add_new_messages([user_message("w3")]) == 1  # the 1.x provider's save
        assert texts(await store.transcript(last=2)) == ["w2", "w3"]
        assert len(await store.list_messages()) == 4
        assert (await store.compact(force=True)).compacted
        assert await store.summary() is not None
        assert (await store.info()).message_count == 4
        assert await store.count() == 4
        first = await store.getitem(0)
        assert await store.index(first) == 0
        await store.setitem(0, user_message("w0 edited"))
        await store.remove(await store.getitem(1))
        assert texts(await store.transcript()) == ["w0 edited", "w2", "w3"]
        for n in range(4, 9):
            await store.add_messages([user_message(f"w{n}")])  # trimmed to max_messages
        assert await store.count() == 6
        fork = await store.fork()
        async with RedisChatMessageStore(
            thread_id="w1", key_prefix=prefix, redis_client=store.redis_client, encryption=ROTATED
        ) as rotated:
            assert await rotated.rekey() > 0
        await store.clear()
        assert await store.count() == 0
    async with RedisChatMessageStore(url, thread_id=fork, key_prefix=prefix, labels={"user": "erin"}) as relabelled:
        await relabelled.add_messages([user_message("relabelled")])  # leaves dave's index for erin's
    async with RedisChatMessageStore(url, thread_id="w4", key_prefix=prefix, registry=False, ttl=600) as unlisted:
        await unlisted.add_messages([user_message("unlisted")], idempotency_key="u")  # its tokens: the batches set
        await unlisted.add_messages([user_message("unlisted")], idempotency_key="u")
        assert await unlisted.count() == 1
        await unlisted.clear()
    if GENERATION == "current":
        from agent_framework import AgentSession

        from agent_framework_redis_store import RedisChatHistoryProvider, RedisSessionStore

        async with RedisSessionStore(url, key_prefix=prefix, ttl=600, encryption=encryption) as sessions:
            await sessions.set("w2", AgentSession(session_id="w2"))
            assert await sessions.get("w2") is not None
            await sessions.delete("w2")
            assert await sessions.get("w2") is None
        async with RedisChatHistoryProvider(
            url, key_prefix=prefix, encryption=encryption, labels={"user": "dave"}
        ) as provider:
            await provider.save_messages("w3", [user_message("p0"), user_message("p1")])
            await provider.save_messages("w3", [user_message("p2")])
            assert texts(await provider.get_messages("w3")) == ["p0", "p1", "p2"]
            await provider.clear("w3")


async def operate(url: str, prefix: str, encryption: AESGCMEncryption, source_url: str) -> None:
    """The operator role: the registry's and the CLI's maintenance, key rotation and migration."""
    async with RedisThreadRegistry(url, key_prefix=prefix, encryption=encryption) as registry:
        await read_registry(registry)
        record = await registry.export_thread("t2")
        assert await registry.import_thread(dataclasses.replace(record, thread_id="t2-copy"))
        assert await registry.import_thread(record, replace=True)
        assert await registry.fork("t1", "t1-fork", upto=2) == "t1-fork"
        assert (await registry.purge(older_than=datetime.timedelta(days=30), dry_run=True)).purged == 1
        assert (await registry.purge(older_than=datetime.timedelta(days=30))).purged == 1
        assert await registry.reindex() >= 4
        assert (await registry.erase(labels={"user": "bob"}, dry_run=True)).thread_ids
        assert (await registry.erase(labels={"user": "bob"})).complete
        assert await registry.delete(["t1-fork"]) == 1
        long = [user_message(f"l{n}").to_dict(exclude_none=True) for n in range(4)]
        assert await registry.import_thread(ThreadRecord("long", long, {}, None, None, None, None))
        async with RedisChatMessageStore(
            thread_id="long", key_prefix=prefix, redis_client=registry.redis_client, registry=False,
            encryption=encryption, compaction=compaction(),
        ) as store:  # fmt: skip
            assert (await store.compact(force=True)).compacted  # threads compact
        assert (await rekey_prefix(registry.redis_client, ROTATED, key_prefix=prefix)).threads_seen >= 1
    async with (
        RedisThreadRegistry(url, key_prefix=prefix) as target,
        redis.asyncio.Redis.from_url(source_url) as source,
    ):
        copied = await migrate_langchain(source, target, delete_source=True)
        assert (copied.migrated, copied.sources_deleted, copied.complete) == (1, 1, True)
        copied = await migrate_agent_framework_redis(source, target, delete_source=True)
        assert copied.migrated >= 1
        assert copied.complete


async def read_registry(registry: RedisThreadRegistry) -> None:
    page = await registry.list_threads(limit=1)
    assert (await registry.list_threads(limit=1, cursor=page.next_cursor)).threads
    assert [t.thread_id async for t in registry.iter_threads(labels={"user": "alice"})] == ["t1"]
    assert await registry.missing(["t1", "nope"]) == ["nope"]
    assert (await registry.info("t1")).labels == {"user": "alice"}
    assert (await registry.stats()).threads >= 3
    assert await registry.count() >= 3


def run_cli(url: str, prefix: str, *args: str) -> None:
    """A ``redis-chat-store`` command as ``url``'s user, with the keys of ``ROTATED`` (in-process)."""
    keys = {ENCRYPTION.ENV_VAR: ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in _KEYS)}
    done = cli_here(url, *args, "--key-prefix", prefix, env=keys)
    assert done.returncode == 0, done.stderr


def used_commands(server: EmbeddedRedis) -> set[str]:
    """The commands the server ran since its statistics were reset, less the test's own."""
    with redis.Redis.from_url(server.url) as admin:
        stats: dict[str, Any] = admin.info("commandstats")  # type: ignore[assignment]
    return {name.removeprefix("cmdstat_") for name, row in stats.items() if row["calls"]} - NOT_THE_ROLES


@pytest.fixture(scope="module")
def role_servers() -> Iterator[tuple[EmbeddedRedis, EmbeddedRedis]]:
    """The store's server and a migration source's, both of this module's own."""
    with EmbeddedRedis() as target, EmbeddedRedis() as source:
        yield target, source


def prepared(server: EmbeddedRedis, users: dict[str, list[str]]) -> None:
    with redis.Redis.from_url(server.url) as admin:
        admin.flushall()
        for user, rules in users.items():
            admin.execute_command("ACL", "SETUSER", user, "reset", *rules)


def reset_statistics(*servers: EmbeddedRedis) -> None:
    for server in servers:
        with redis.Redis.from_url(server.url) as admin:
            admin.config_resetstat()


@pytest.mark.parametrize("role", [READER, WRITER, OPERATOR])
def test_each_role_runs_every_operation_with_exactly_the_documented_rules(
    role_servers: tuple[EmbeddedRedis, EmbeddedRedis], role: str
) -> None:
    target, source = role_servers
    prefix = "app"
    prepared(target, {role: role_rules(role, prefix)})
    prepared(source, {SOURCE: role_rules(SOURCE)})
    asyncio.run(seed(target.url, prefix, ENCRYPTION))
    asyncio.run(seed_sources(source.url))
    reset_statistics(target, source)

    url = user_url(target, role)
    if role == READER:
        asyncio.run(read_everything(url, prefix, ENCRYPTION))
        for command in (["threads", "list"], ["threads", "show", "t1"], ["threads", "export", "t1", "-o", "-"]):
            run_cli(url, prefix, *command)
        run_cli(url, prefix, "stats")
    elif role == WRITER:
        asyncio.run(write_as_an_app(url, prefix, ENCRYPTION))
    else:
        asyncio.run(operate(url, prefix, ENCRYPTION, user_url(source, SOURCE)))
        run_cli(url, prefix, "threads", "fork", "t1", "--new-id", "cli-fork")
        run_cli(url, prefix, "threads", "delete", "cli-fork", "--yes")
        run_cli(url, prefix, "threads", "purge", "--older-than", "3650d", "--yes")
        run_cli(url, prefix, "threads", "erase", "--label", "user=alice", "--yes")
        run_cli(url, prefix, "threads", "reindex")
        run_cli(url, prefix, "threads", "rekey", "--keys-env", ENCRYPTION.ENV_VAR, "--encrypt-plaintext")

    granted = granted_commands(role_rules(role, prefix))
    used = used_commands(target)
    assert used <= granted  # it all worked: nothing else was run
    if GENERATION == "current":  # the session store and the provider exist: every operation ran
        assert used == granted, f"granted and never used: {sorted(granted - used)}"
    if role == OPERATOR:
        assert used_commands(source) == granted_commands(role_rules(SOURCE))


def test_a_read_only_user_writes_nothing_and_lists_past_expired_threads(
    role_servers: tuple[EmbeddedRedis, EmbeddedRedis],
) -> None:
    target, _ = role_servers
    prepared(target, {READER: role_rules(READER, "app")})
    asyncio.run(seed(target.url, "app", ENCRYPTION))

    async def try_to_write(url: str) -> None:
        async with RedisThreadRegistry(url, key_prefix="app", encryption=ENCRYPTION) as registry:
            # The registry still names "gone": the listing skips it, and cannot prune it.
            assert "gone" not in {t.thread_id async for t in registry.iter_threads()}
            assert await registry.redis_client.zscore("app:registry", "gone") is not None
            with pytest.raises(RedisPermissionError, match=r"refused the user access to 'app:registry'"):
                await registry.delete(["t1"])
        async with RedisChatMessageStore(
            url, thread_id="t1", key_prefix="app", encryption=ENCRYPTION, compaction=compaction()
        ) as store:
            compact = lambda: store.compact(force=True)  # noqa: E731
            for write in (lambda: store.add_messages([user_message("x")]), store.clear, compact):
                with pytest.raises(RedisPermissionError, match=r"'app:\{t1\}"):
                    await write()

    asyncio.run(try_to_write(user_url(target, READER)))
    assert asyncio.run(exported_threads(target.url, "app"))["t1"].messages


async def exported_threads(url: str, prefix: str) -> dict[str, ThreadRecord]:
    async with RedisThreadRegistry(url, key_prefix=prefix, encryption=ENCRYPTION) as registry:
        return {  # less what changes by itself, the TTL left
            t.thread_id: dataclasses.replace(await registry.export_thread(t.thread_id), ttl_remaining=None)
            async for t in registry.iter_threads()
        }


@pytest.mark.parametrize(("mine", "theirs"), [("tenantA", "tenantA:eu"), ("tenantA:eu", "tenantA")])
def test_a_prefixs_users_are_refused_every_key_of_a_longer_or_shorter_prefix(
    role_servers: tuple[EmbeddedRedis, EmbeddedRedis], mine: str, theirs: str
) -> None:
    target, _ = role_servers
    prepared(
        target,
        {
            "writer": role_rules(WRITER, mine),
            "operator": role_rules(OPERATOR, mine),
            "reader": role_rules(READER, mine),
        },
    )
    for prefix in (mine, theirs):
        asyncio.run(seed_small(target.url, prefix))
    before = asyncio.run(exported_threads(target.url, theirs))

    async def intrude() -> None:
        refused: list[str] = []
        messages: list[str] = []

        async def refused_on(what: str, call: Callable[[], Awaitable[Any]]) -> None:
            try:
                await call()
            except RedisPermissionError as error:  # never a raw redis-py error, nor anything else
                refused.append(what)
                messages.append(str(error))

        async with RedisChatMessageStore(
            user_url(target, "writer"), thread_id="t", key_prefix=theirs, encryption=ENCRYPTION
        ) as store:
            await refused_on("append", lambda: store.add_messages([user_message("planted")]))
            await refused_on("repeat-aware append", lambda: store.add_new_messages([user_message("planted")]))
            for name in ("list_messages", "transcript", "count", "info", "summary", "clear", "rekey"):
                await refused_on(name, getattr(store, name))
        if GENERATION == "current":
            from agent_framework import AgentSession

            from agent_framework_redis_store import RedisSessionStore

            async with RedisSessionStore(user_url(target, "writer"), key_prefix=theirs) as sessions:
                await refused_on("session get", lambda: sessions.get("t"))
                await refused_on("session set", lambda: sessions.set("t", AgentSession(session_id="t")))
                await refused_on("session delete", lambda: sessions.delete("t"))
        for user in ("reader", "operator"):
            async with RedisThreadRegistry(
                user_url(target, user), key_prefix=theirs, encryption=ENCRYPTION
            ) as registry:
                await refused_on(f"{user} list", registry.list_threads)
                await refused_on(f"{user} info", lambda: registry.info("t"))
                await refused_on(f"{user} export", lambda: registry.export_thread("t"))
        async with RedisThreadRegistry(user_url(target, "operator"), key_prefix=theirs) as registry:
            record = ThreadRecord("planted", [user_message("x").to_dict(exclude_none=True)], {}, None, None, None, None)
            await refused_on("import", lambda: registry.import_thread(record))
            await refused_on("delete", lambda: registry.delete(["t"]))
            await refused_on("purge", lambda: registry.purge(older_than=0))
            await refused_on("erase", lambda: registry.erase(labels={"user": "alice"}))
            await refused_on("reindex", registry.reindex)
            await refused_on("fork", lambda: registry.fork("t", "copy"))
            await refused_on("rekey", lambda: rekey_prefix(registry.redis_client, ROTATED, key_prefix=theirs))
        expected = ["append", "repeat-aware append", "list_messages", "transcript", "count", "info", "summary"]
        expected += ["clear", "rekey"]
        if GENERATION == "current":
            expected += ["session get", "session set", "session delete"]
        expected += [f"{user} {what}" for user in ("reader", "operator") for what in ("list", "info", "export")]
        expected += ["import", "delete", "purge", "erase", "reindex", "fork", "rekey"]
        assert refused == expected
        assert not [message for message in messages if APP_PASSWORD in message]

    asyncio.run(intrude())
    assert asyncio.run(exported_threads(target.url, theirs)) == before


async def seed_small(url: str, prefix: str) -> None:
    async with RedisChatMessageStore(
        url, thread_id="t", key_prefix=prefix, labels={"user": "alice"}, encryption=ENCRYPTION, ttl=3600
    ) as store:
        await store.add_messages([user_message(f"{prefix} says hello")])
    if GENERATION == "current":
        from agent_framework import AgentSession

        from agent_framework_redis_store import RedisSessionStore

        async with RedisSessionStore(url, key_prefix=prefix, encryption=ENCRYPTION) as sessions:
            await sessions.set("t", AgentSession(session_id="t"))


def test_the_key_patterns_cover_their_prefix_and_only_the_caveat_beyond(acl_server: EmbeddedRedis) -> None:
    """Redis itself matches the documented patterns for ``tenantA`` against the keys of other prefixes."""
    with redis.Redis.from_url(acl_server.url, decode_responses=True) as admin:
        if int(admin.info("server")["redis_version"].split(".")[0]) < 7:
            pytest.skip("ACL DRYRUN needs Redis 7")
        admin.execute_command("ACL", "SETUSER", "tenant-a", "reset", *role_rules(READER, "tenantA"))

        def allowed(key: str) -> bool:
            return admin.execute_command("ACL", "DRYRUN", "tenant-a", "GET", key) == "OK"

        def keys_of(prefix: str) -> list[str]:
            space = Keyspace(prefix)
            thread = space.thread("a {b}:c")
            return [*thread.owned, space.registry, *space.label_indexes({"user": "al:ice"}), space.labels_complete]

        assert all(allowed(key) for key in keys_of("tenantA"))
        for other in ("tenantA:eu", "tenantA2", "tenant", "tenantA:registry", "tenantA:label-index", "x:tenantA"):
            assert not any(allowed(key) for key in keys_of(other)), other
        # The documented caveat: a prefix that is tenantA:label, or begins with tenantA:label:.
        for caveat in ("tenantA:label", "tenantA:label:x"):
            assert any(allowed(key) for key in keys_of(caveat))


async def test_rekey_prefix_without_scan_is_a_permission_error(clean_acl_server: EmbeddedRedis) -> None:
    async with redis.asyncio.Redis.from_url(app_url(clean_acl_server)) as client:  # the application's user
        with pytest.raises(RedisPermissionError, match=r"'app:\{\*'.*scan"):
            await rekey_prefix(client, ROTATED, key_prefix="app")
