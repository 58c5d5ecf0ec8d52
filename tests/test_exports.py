"""The 1.x adapters are exported in the current generation and explained in the legacy one."""

from __future__ import annotations

import pytest

import agent_framework_redis_store as package


@pytest.mark.legacy
@pytest.mark.parametrize("name", ["RedisChatHistoryProvider", "RedisSessionStore"])
def test_legacy_generation_says_what_the_adapters_need(name: str) -> None:
    with pytest.raises(ImportError, match=r"agent-framework-core 1\.x"):
        getattr(package, name)


@pytest.mark.current
def test_current_generation_exports_the_framework_subclasses() -> None:
    from agent_framework import HistoryProvider, SessionStore

    assert issubclass(package.RedisChatHistoryProvider, HistoryProvider)
    assert issubclass(package.RedisSessionStore, SessionStore)


def test_unknown_names_are_still_attribute_errors() -> None:
    with pytest.raises(AttributeError):
        package.NoSuchThing  # noqa: B018
