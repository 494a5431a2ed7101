"""Prompt templates: Jinja2 in its sandbox with strict undefined variables.

Templates are written by tenants, so they render in :class:`SandboxedEnvironment` (no
attribute access to internals, no unsafe calls) and a variable the caller did not give
is an error naming it, never a silently empty string.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment

from roost.errors import InvalidRequest

_ENVIRONMENT = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)
MAX_TEMPLATE_CHARS = 100_000


def check_template(template: str) -> list[str]:
    """The template's variables (sorted); :class:`InvalidRequest` when it does not parse."""
    if len(template) > MAX_TEMPLATE_CHARS:
        raise InvalidRequest(
            f"a template is at most {MAX_TEMPLATE_CHARS} characters", param="template"
        )
    return sorted(meta.find_undeclared_variables(_parse(template)))


def render(template: str, variables: dict[str, Any]) -> str:
    """``template`` with ``variables`` filled in the sandbox; 400 on a missing variable
    or a sandbox violation."""
    try:
        return _compiled(template).render(**variables)
    except SecurityError as exc:
        raise InvalidRequest(f"template refused by the sandbox: {exc}", param="template") from exc
    except TemplateError as exc:
        raise InvalidRequest(f"template could not render: {exc}", param="variables") from exc


def _parse(template: str) -> nodes.Template:
    try:
        return _ENVIRONMENT.parse(template)
    except TemplateError as exc:
        raise InvalidRequest(f"template does not parse: {exc}", param="template") from exc


@lru_cache(maxsize=512)
def _compiled(template: str) -> Any:
    # Compiling is the expensive part; runs of one prompt version render it many times.
    try:
        return _ENVIRONMENT.from_string(template)
    except TemplateError as exc:
        raise InvalidRequest(f"template does not parse: {exc}", param="template") from exc
