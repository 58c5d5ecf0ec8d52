"""TLS with client certificates, ACL users limited to a key prefix, and credential providers.

Each test talks to a redis-server of this module's own: one with TLS (CA, server and client
certificates generated here), one with ACL users.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path
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
    AESGCMEncryption,
    RedisChatMessageStore,
    RedisPermissionError,
    RedisStoreError,
    RedisUnavailableError,
    redact_url,
    rekey_prefix,
)
from agent_framework_redis_store._testing.embedded import _free_port
from agent_framework_redis_store.testing import EmbeddedRedis

from .scripted import user_message

# What a store needs on its own prefix (README: "TLS and ACLs"); no other command, no other key.
STORE_COMMANDS = [
    "+rpush", "+lrange", "+llen", "+ltrim", "+lindex", "+lset", "+zscore", "+zadd", "+zremrangebyrank",
    "+zrem", "+zcard", "+exists", "+pexpire", "+pttl", "+del", "+set", "+hset", "+hsetnx", "+hincrby", "+hmget",
    "+multi", "+exec", "+evalsha", "+script|load", "+ping",
]  # fmt: skip
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
    """A redis-server with a user ``app`` limited to keys under ``app:`` and the store's commands."""
    with EmbeddedRedis() as server, redis.Redis.from_url(server.url) as admin:
        admin.execute_command(
            "ACL", "SETUSER", "app", "on", f">{APP_PASSWORD}", "resetkeys", "~app:*", "resetchannels", "-@all",
            *STORE_COMMANDS,
        )  # fmt: skip
        # The maintenance walk (rekey_prefix) also needs SCAN.
        admin.execute_command(
            "ACL", "SETUSER", "app-admin", "on", f">{APP_PASSWORD}", "~app:*", "-@all", "+scan", *STORE_COMMANDS
        )
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
