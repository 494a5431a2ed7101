"""roost.toml without its secrets, for archives that are not encrypted.

Secret-bearing keys are commented out line by line (the file keeps its comments and
layout), then the result is parsed to prove no secret is left; a file that cannot be
proven clean (a secret inside a multi-line value, say) is left out of the archive.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

# Keys that hold credentials anywhere in the settings tree (headers and env carry tokens
# of LLM providers and MCP servers).
SECRET_KEYS = frozenset(
    {"api_key", "bootstrap_key", "capability_secret", "webhook_secret", "headers", "env"}
)
_ASSIGNMENT = re.compile(r"(?:^|[{,\s])(" + "|".join(sorted(SECRET_KEYS)) + r")\s*=")
_URL_PASSWORD = re.compile(r"://[^/\s'\"@:]*:[^/\s'\"@]*@")


def redact_config(text: str) -> str | None:
    """The file with secret lines commented out, or None when that cannot be done safely."""
    lines = []
    for line in text.splitlines():
        if _ASSIGNMENT.search(line.split("#", 1)[0]) or _URL_PASSWORD.search(line):
            lines.append("# removed by roost backup (a secret; back up --with-secrets)")
        else:
            lines.append(line)
    redacted = "\n".join(lines) + "\n"
    try:
        data = tomllib.loads(redacted)
    except tomllib.TOMLDecodeError:
        return None
    return None if _holds_secret(data) else redacted


def _holds_secret(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(key in SECRET_KEYS or _holds_secret(v) for key, v in value.items())
    if isinstance(value, list):
        return any(_holds_secret(v) for v in value)
    return isinstance(value, str) and _URL_PASSWORD.search(value) is not None
