"""``python -m agent_framework_redis_store``: the ``redis-chat-store`` command."""

from ._cli import run

run()
