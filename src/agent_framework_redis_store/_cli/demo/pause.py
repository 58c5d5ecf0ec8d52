"""Example 7's first process: drafts a refund, leaves the workflow waiting in Redis, exits.

``python -m agent_framework_redis_store._cli.demo.pause`` reads ``{"redis_url", "key_prefix",
"offline", "request"}`` as JSON on stdin (the URL may hold a password: never on the command
line) and prints ``Paused`` as one JSON line. The model is chosen as the demo chose it, from
the same environment.
"""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import asdict

from .main import choose_model
from .workflow import draft_and_pause


def main() -> None:
    order = json.loads(sys.stdin.read())
    model = choose_model(offline=order["offline"])
    paused = asyncio.run(draft_and_pause(model.client, order["redis_url"], order["key_prefix"], order["request"]))
    print(json.dumps(asdict(paused)))


if __name__ == "__main__":
    main()
