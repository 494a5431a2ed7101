"""The LLM layer's loopback upstream, for the provider-secret tests."""

from tests.llm.conftest import upstream, upstream_server  # noqa: F401
