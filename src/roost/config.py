"""One typed settings object for all of Roost.

Sources, highest priority first:
1. ``ROOST_*`` environment variables: nested keys with ``__`` (``ROOST_SERVER__PORT=9000``)
   and a few flat aliases that deployments expect (``ROOST_HOME``, ``ROOST_AUTH``,
   ``ROOST_API_KEY``, ``ROOST_DATABASE_URL``).
2. ``roost.toml``: the file named by ``--config`` / ``ROOST_CONFIG``, else ``./roost.toml``,
   else ``$ROOST_HOME/roost.toml``.
3. Defaults below.

Unknown keys in the file are errors, and :func:`load_settings` reports every problem at
once with its key and source. A ``ROOST_*`` variable that names no setting is a warning,
not an error: the namespace is shared with variables that are not settings (``ROOST_KEY``
in README's examples, a deployment's own), and a typo still gets reported.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from roost.errors import ConfigError

ENV_PREFIX = "ROOST_"
# Flat variables people set by hand, mapped onto the nested keys they mean.
ENV_ALIASES: dict[str, tuple[str, ...]] = {
    "ROOST_HOME": ("home",),
    "ROOST_AUTH": ("auth", "mode"),
    "ROOST_API_KEY": ("auth", "bootstrap_key"),
    "ROOST_DATABASE_URL": ("storage", "url"),
    "ROOST_REDIS_URL": ("storage", "redis_url"),
    "ROOST_LOG_LEVEL": ("logging", "level"),
}
# Variables that steer loading or the CLI rather than name a setting: never warned about.
ENV_LOADER_VARS = {"ROOST_CONFIG", "ROOST_URL", "ROOST_KEY"}


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    max_body_bytes: int = Field(
        8 * 1024 * 1024, ge=1024, description="Largest request body accepted"
    )
    max_json_depth: int = Field(
        64, ge=8, le=512, description="Deepest nesting of a JSON body (objects and arrays)"
    )
    request_timeout_s: float = Field(
        600.0, gt=0, description="Longest a request may take before a 504 (streams: to first byte)"
    )
    max_header_bytes: int = Field(
        32 * 1024, ge=1024, description="Largest total size of request headers; larger: 431"
    )
    ui_session_ttl_s: float = Field(
        8 * 3600.0, gt=0, description="How long a web UI sign-in lasts before signing in again"
    )


_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
_JWT_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384",
                   "ES512", "EdDSA", "HS256", "HS384", "HS512")  # fmt: skip


class JwtIssuerSettings(Section):
    """One trusted token issuer (an OIDC provider or a signer of your own)."""

    issuer: str = Field(min_length=1, description="The exact `iss` claim of its tokens")
    jwks_url: str | None = Field(
        None, description="Its JWKS document (https; http only on loopback)"
    )
    keys: list[dict[str, Any]] = Field(
        default_factory=list, description="Static JWKs instead of (or besides) a JWKS URL"
    )
    audience: list[str] = Field(min_length=1, description="Accepted `aud` values (one must match)")
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256"],
        description="Pinned signing algorithms; a token naming another is refused",
    )
    leeway_s: float = Field(30.0, ge=0, le=600, description="Clock skew allowed on exp/nbf/iat")
    tenant_claim: str = Field("tenant", description="Claim naming the tenant (by name)")
    tenant: str | None = Field(None, description="Tenant for every token of this issuer")
    role_claim: str = Field("roost_role", description="Claim (string or list) giving the role")
    role_map: dict[str, str] = Field(
        default_factory=dict,
        description="Claim value -> owner|member|viewer|operator; unmapped values map to "
        "themselves when they name a role",
    )
    default_role: str | None = Field(None, description="Role when the claim gives none")
    jwks_cache_s: float = Field(300.0, gt=0, description="How long a fetched JWKS is trusted")
    ui_client_id: str | None = Field(
        None,
        description="OIDC client id for signing in to the web UI (authorization code flow"
        " with PKCE, discovery at <issuer>/.well-known/openid-configuration); its id tokens'"
        " aud must be in `audience`",
    )
    ui_client_secret: SecretStr | None = Field(
        None, description="The UI client's secret, for an IdP that makes it a confidential client"
    )
    ui_label: str | None = Field(None, description="The sign-in button's name for this issuer")
    jwks_min_refresh_s: float = Field(
        30.0, ge=0, description="Least time between fetches caused by an unknown `kid`"
    )

    @model_validator(mode="after")
    def _ui_issuer_is_a_url(self) -> JwtIssuerSettings:
        if self.ui_client_id is not None:
            parts = urlsplit(self.issuer)
            if parts.scheme != "https" and not (
                parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
            ):
                raise ValueError(
                    "ui_client_id needs an issuer that is an https:// URL (http:// only on a"
                    " loopback address): the UI discovers its endpoints there"
                )
        return self

    @field_validator("jwks_url")
    @classmethod
    def _safe_jwks_url(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme != "https" and not (
                parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS
            ):
                raise ValueError("must be https:// (http:// only on a loopback address)")
        return value

    @field_validator("algorithms")
    @classmethod
    def _known_algorithms(cls, value: list[str]) -> list[str]:
        unknown = [a for a in value if a not in _JWT_ALGORITHMS]
        if unknown or not value:
            raise ValueError(f"use some of {', '.join(_JWT_ALGORITHMS)} (never 'none')")
        families = {a[:2] for a in value}
        if "HS" in families and len(families) > 1:
            # One issuer mixing shared-secret and public-key algorithms is what key
            # confusion attacks exploit.
            raise ValueError("do not mix HS* with public-key algorithms in one issuer")
        return value

    @field_validator("role_map")
    @classmethod
    def _known_roles(cls, value: dict[str, str]) -> dict[str, str]:
        allowed = ("owner", "member", "viewer", "operator")
        bad = sorted(v for v in value.values() if v not in allowed)
        if bad:
            raise ValueError(f"unknown roles {bad}: use {', '.join(allowed)}")
        return value

    @model_validator(mode="after")
    def _has_keys(self) -> JwtIssuerSettings:
        if self.jwks_url is None and not self.keys:
            raise ValueError("give jwks_url or keys")
        if self.default_role is not None and self.default_role not in ("owner", "member",
                                                                       "viewer"):  # fmt: skip
            raise ValueError("default_role must be owner, member or viewer")
        return self


class AuthSettings(Section):
    mode: Literal["enabled", "disabled"] = "enabled"
    bootstrap_key: SecretStr | None = Field(
        None, description="API key seeded for the default tenant at start (scripts, deployments)"
    )
    jwt_issuers: list[JwtIssuerSettings] = Field(
        default_factory=list, description="Trusted JWT issuers ([[auth.jwt_issuers]])"
    )
    key_cache_ttl_s: float = Field(
        5.0,
        ge=0,
        le=300,
        description="How long a verified API key or JWT is trusted from memory; any change to"
        " keys or tenants, in any process, ends that at once (0: verify every request)",
    )

    @field_validator("bootstrap_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value


class SecretsSettings(Section):
    """Credentials stored through Roost (``roost secrets``), encrypted at rest."""

    master_key: SecretStr | None = Field(
        None,
        description="Master secret the encryption key is derived from; default: a random key"
        " in home/master.key, made on first use (set this from a secret manager instead)",
    )

    @field_validator("master_key")
    @classmethod
    def _long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value


class StorageSettings(Section):
    url: str | None = Field(
        None, description="sqlite:///path or postgresql://…; default: SQLite under home"
    )
    redis_url: str | None = Field(None, description="redis://… for short-term memory, limits")
    busy_timeout_ms: int = Field(5000, ge=0)
    pool_size: int = Field(10, ge=1, le=1000)
    connect_timeout_s: float = Field(10.0, gt=0)

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None:
            scheme = urlsplit(value).scheme.split("+")[0]
            if scheme not in ("sqlite", "postgresql", "postgres"):
                raise ValueError(
                    f"scheme {scheme!r} not supported: use sqlite:/// or postgresql://"
                )
        return value


class LoggingSettings(Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["json", "console"] = "json"


class TraceTenantPolicy(Section):
    """One tenant's tracing policy; unset fields take the ``[tracing]`` defaults."""

    record_content: bool | None = Field(
        None, description="Keep prompts and completions on model-call spans"
    )
    retention_days: int | None = Field(None, ge=1)
    retention_bytes: int | None = Field(None, ge=0)


class TracingSettings(Section):
    otlp_endpoint: str | None = Field(
        None, description="OTLP/HTTP endpoint; unset keeps spans in-process"
    )
    service_name: str = "roost"
    sample_ratio: float = Field(1.0, ge=0.0, le=1.0)
    store: bool = Field(True, description="Write every span to the platform database")
    record_content: bool = Field(
        False, description="Keep prompts and completions on spans (default for every tenant)"
    )
    retention_days: int = Field(30, ge=1, description="Traces older than this are deleted")
    retention_bytes: int = Field(
        1 << 30, ge=0, description="Per tenant: oldest traces go once their spans exceed this"
    )
    retention_interval_s: float = Field(3600.0, gt=0, description="How often retention runs")
    flush_interval_ms: int = Field(
        1000, ge=1, le=60_000, description="Span batches wait at most (bigger batches cost less)"
    )
    batch_size: int = Field(512, ge=1, le=100_000, description="Spans written per transaction")
    max_queue: int = Field(
        100_000, ge=1, description="Spans waiting to be written; more are dropped and counted"
    )
    max_ingest_bytes: int = Field(
        4 << 20, ge=1024, description="Largest OTLP/HTTP payload accepted at /v1/otel/v1/traces"
    )
    tenants: dict[str, TraceTenantPolicy] = Field(
        default_factory=dict, description="Per-tenant overrides, by tenant name or id"
    )


class SessionCacheSettings(Section):
    """Per-session (agent, thread, conversation) KV caches in hot/warm/cold tiers."""

    enabled: bool = Field(True, description="Keep each session's KV across turns and restarts")
    hot_fraction: float = Field(
        0.5, gt=0, le=1, description="Share of the KV pool that session caches may pin"
    )
    warm_gb: float | None = Field(
        None, ge=0, description="Host memory for caches demoted from the pool; unset: a fraction"
    )
    warm_fraction: float = Field(
        0.1, gt=0, le=0.9, description="Unset warm_gb: this share of memory left after the pool"
    )
    cold_gb: float = Field(20.0, ge=0, description="Disk for caches under <home>/kv")
    quantization: Literal["none", "int8", "int4"] = Field(
        "int8", description="How warm and cold caches store K/V"
    )
    directory: Path | None = Field(None, description="Where cold caches live; default <home>/kv")


class EngineSettings(Section):
    enabled: bool = Field(
        True, description="Load the local model at start (off: remote models only)"
    )
    model: str = Field("smollm2-135m-instruct", description="Registered model name or a path")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    weight_quantization: Literal["auto", "none", "int8", "int4"] = Field(
        "auto",
        description="Weight-only int4/int8 matmuls on CPU; auto: 4-bit where the weights "
        "already are (a Q4 GGUF) and the engine computes in bf16",
    )
    prefill_dtype: Literal["auto", "float32", "compute"] = Field(
        "auto",
        description="Matmuls of prefill chunks: float32 (a float32 copy of the weights), "
        "compute (the engine's dtype); auto: float32 on CPUs without AMX when the copy "
        "takes at most a tenth of the available memory",
    )
    kv_cache_gb: float | None = Field(
        None, gt=0, description="Memory budget of the KV block pool; unset: a fraction"
    )
    kv_cache_fraction: float = Field(
        0.2, gt=0, le=0.9, description="Unset kv_cache_gb: this share of the available memory"
    )
    block_size: int = Field(16, ge=1, le=1024)
    max_num_seqs: int = Field(32, ge=1, le=4096)
    prefill_chunk_tokens: int = Field(512, ge=256, le=4096)
    max_model_len: int | None = Field(None, ge=16, description="Cap on the model's context")
    num_threads: int | None = Field(None, ge=1, description="Torch CPU threads; default: all")
    enable_prefix_cache: bool = Field(True, description="Reuse KV blocks of shared prompt prefixes")
    session_cache: SessionCacheSettings = Field(default_factory=SessionCacheSettings)
    models: dict[str, str] = Field(
        default_factory=dict,
        description="Named models: name -> a .gguf file, a Hugging Face directory or repo id",
    )
    swap_drain_timeout_s: float = Field(
        30.0, ge=0, description="On a model swap, how long running requests may finish"
    )
    max_tokens: int = Field(
        4096, ge=1, description="Ceiling on a request's max_tokens (larger: 400; unset: this)"
    )
    fair_scheduling: bool = Field(
        True, description="Share admission and decode slots fairly between tenants"
    )
    tenant_weights: dict[str, Annotated[float, Field(gt=0)]] = Field(
        default_factory=dict, description="Tenant id -> share of slots (default 1.0)"
    )


class LLMProviderSettings(Section):
    """An endpoint and its credentials; ``kind`` picks the SDK (default: the section's name)."""

    kind: Literal["openai", "anthropic", "gemini", "local"] | None = None
    base_url: str | None = Field(None, description="Any OpenAI-compatible server for kind openai")
    api_key: SecretStr | None = None
    api_key_env: str | None = Field(None, description="Variable holding the key (default per kind)")
    timeout_s: float = Field(60.0, gt=0)
    headers: dict[str, str] = Field(default_factory=dict)


class LLMDeploymentSettings(Section):
    model: str = Field(description="provider:model, e.g. openai:gpt-4.1-mini")
    weight: float = Field(1.0, gt=0, description="Share of traffic under the weighted strategy")


class LLMGroupSettings(Section):
    strategy: Literal["priority", "weighted", "least_latency", "lowest_cost"] = "priority"
    deployments: list[LLMDeploymentSettings] = Field(min_length=1)

    @field_validator("deployments", mode="before")
    @classmethod
    def _plain_ids(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"model": item} if isinstance(item, str) else item for item in value]
        return value


class LLMPriceSettings(Section):
    """USD per million tokens."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached_input: float | None = Field(None, ge=0)


class LLMBudgetSettings(Section):
    tenant: str | None = Field(None, description="Tenant id; unset with key unset: every tenant")
    key: str | None = Field(None, description="API key id")
    limit_usd: float | None = Field(None, ge=0, description="Money per period")
    limit_tokens: int | None = Field(
        None, ge=0, description="Tokens (input + output) per period, local models included"
    )
    period: Literal["day", "month", "total"] = "month"

    @model_validator(mode="after")
    def _some_limit(self) -> LLMBudgetSettings:
        if self.limit_usd is None and self.limit_tokens is None:
            raise ValueError("set limit_usd, limit_tokens or both")
        return self


class LLMRetrySettings(Section):
    max_retries: int = Field(3, ge=0, le=10)
    backoff_s: float = Field(1.0, ge=0, description="First wait; doubles each retry (1s, 2s, 4s)")
    jitter: float = Field(0.1, ge=0, le=1, description="Random share added to each wait")
    rate_limit_retries: int = Field(3, ge=0, le=10)
    max_retry_after_s: float = Field(
        10.0, ge=0, description="Longer retry-after: fail over now instead of waiting"
    )


class LLMCircuitSettings(Section):
    failure_threshold: int = Field(5, ge=1)
    reset_after_s: float = Field(30.0, gt=0)
    health_check_interval_s: float | None = Field(None, gt=0, description="Probe open circuits")


class LLMCacheSettings(Section):
    enabled: bool = False
    store: Literal["memory", "database", "redis"] = "memory"
    ttl_s: float = Field(3600.0, gt=0)
    max_entries: int = Field(10_000, ge=1)
    semantic: bool = False
    similarity_threshold: float = Field(0.95, gt=0, le=1)
    semantic_allow_numbers: bool = False
    semantic_allow_pii: bool = False


class LLMComplexitySettings(Section):
    group: str = Field("auto", description="Model name that routes by complexity")
    small: str | None = None
    large: str | None = None
    max_simple_chars: int = Field(1200, ge=1)
    hard_keywords: list[str] = Field(
        default_factory=lambda: ["prove", "refactor", "step by step", "analyze", "design"]
    )


class LLMSettings(Section):
    """Model providers, groups, prices, budgets, retries and the response cache."""

    providers: dict[str, LLMProviderSettings] = Field(default_factory=dict)
    groups: dict[str, LLMGroupSettings] = Field(default_factory=dict)
    prices: dict[str, LLMPriceSettings] = Field(default_factory=dict)
    budgets: list[LLMBudgetSettings] = Field(default_factory=list)
    retry: LLMRetrySettings = Field(default_factory=LLMRetrySettings)
    circuit: LLMCircuitSettings = Field(default_factory=LLMCircuitSettings)
    cache: LLMCacheSettings = Field(default_factory=LLMCacheSettings)
    complexity: LLMComplexitySettings = Field(default_factory=LLMComplexitySettings)
    reserve_max_tokens: int = Field(
        1024, ge=1, description="Output tokens reserved against budgets when a request sets none"
    )
    context_lengths: dict[str, Annotated[int, Field(ge=256)]] = Field(
        default_factory=dict,
        description="Context length (tokens) per provider:model or group, for remote models",
    )
    default_context_length: int = Field(
        8192, ge=256, description="Context length assumed for models that do not tell theirs"
    )


class McpServerSettings(Section):
    """An external MCP server whose tools Roost offers, prefixed with ``name``."""

    name: str = Field(pattern=r"^[A-Za-z0-9-]{1,32}$")
    command: list[str] | None = Field(None, description="stdio: argv of the server process")
    env: dict[str, str] = Field(default_factory=dict, description="stdio: its environment")
    url: str | None = Field(None, description="Streamable HTTP endpoint")
    headers: dict[str, str] = Field(default_factory=dict, description="HTTP headers (auth)")
    risk: Literal["read", "write", "network", "execute", "destructive"] | None = Field(
        None, description="Risk of every tool; default: from the server's tool annotations"
    )


class ToolRoleSettings(Section):
    """A tool role: which tools (globs), up to which risk, which paths and hosts (globs)."""

    max_risk: Literal["read", "write", "network", "execute", "destructive"] = "read"
    tools: list[str] = Field(default_factory=lambda: ["*"])
    paths: list[str] = Field(default_factory=lambda: ["*"])
    hosts: list[str] = Field(default_factory=lambda: ["*"])
    executables: list[str] = Field(
        default_factory=lambda: ["*"], description="Programs run_command may start (globs)"
    )
    may_approve: bool = False


class ToolsSettings(Section):
    """Tools: workspaces, sandbox limits, permissions, approvals, outbound HTTP, MCP servers."""

    workspaces_dir: Path | None = Field(
        None, description="Agent workspaces; default home/workspaces"
    )
    approval_risk: Literal["read", "write", "network", "execute", "destructive"] = "destructive"
    approval_ttl_s: float = Field(86400.0, gt=0)
    self_approval: bool = Field(
        False, description="Whether a principal may approve a high-risk call it requested"
    )
    tenant_self_approval: dict[str, bool] = Field(
        default_factory=dict, description="Tenant name or id -> self_approval for that tenant"
    )
    max_parallel: int = Field(4, ge=1, le=64, description="Concurrent tool calls of one turn")
    default_role: str = Field("admin", description="Role of API keys with no binding")
    agent_role: str = Field("developer", description="Role of agents with no binding")
    roles: dict[str, ToolRoleSettings] = Field(
        default_factory=dict, description="Extra roles (built in: reader, writer, developer, admin)"
    )
    role_bindings: dict[str, str] = Field(
        default_factory=dict, description="'<actor>' or '<tenant id>/<actor>' -> role name"
    )
    capability_secret: SecretStr | None = Field(
        None, description="HMAC key of capability tokens; set it when several nodes run tools"
    )
    allowed_executables: list[str] | None = Field(None, description="Default: a coding kit")
    command_timeout_s: float = Field(120.0, gt=0)
    command_cpu_s: int = Field(120, ge=1)
    command_memory_mb: int = Field(2048, ge=64)
    command_max_processes: int = Field(128, ge=4)
    command_max_output_kb: int = Field(64, ge=1)
    command_network: bool = Field(
        False,
        description="Every command may reach command_network_hosts (through the jail's egress"
        " proxy); git push/fetch ask for it on their own",
    )
    command_network_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts (globs) commands that need the network may reach, e.g. github.com,"
        " pypi.org; empty: none. Loopback and private addresses stay refused",
    )
    command_network_allowed_networks: list[str] = Field(
        default_factory=list,
        description="CIDRs exempt from the refusal of non-public addresses for commands"
        " (an internal git server or package mirror)",
    )
    require_jail: bool = Field(
        True, description="Kept for old configs: commands always need the jail now"
    )
    allow_unjailed_commands: bool = Field(
        False,
        description="DANGEROUS: run tenants' commands without the bubblewrap jail when it is"
        " missing (as the server's user, with its files and network in reach)",
    )
    command_uid: int = Field(
        65534, ge=1, description="Unprivileged host uid (and gid) a root server runs commands as"
    )
    max_commands_per_tenant: int = Field(
        4, ge=1, description="Commands one tenant may run at once in one process"
    )
    workspace_quota_mb: int = Field(
        1024, ge=1, description="Disk space of one tenant's workspaces (all its agents)"
    )
    http_allowed_hosts: list[str] = Field(default_factory=list, description="Empty: any public")
    http_allowed_networks: list[str] = Field(
        default_factory=list, description="CIDRs exempt from the SSRF refusal (internal APIs)"
    )
    mcp_servers: list[McpServerSettings] = Field(default_factory=list)


class MemorySettings(Section):
    """Memory and knowledge: embedder, vector store, short-term windows, consolidation."""

    embedder: str = Field(
        "minilm", description="minilm (bundled all-MiniLM-L6-v2) or hashing[-DIM] (no model)"
    )
    vector_backend: Literal["auto", "sqlite", "postgres"] = Field(
        "auto", description="auto: pgvector when storage is PostgreSQL, else an embedded file"
    )
    vector_path: Path | None = Field(None, description="SQLite vector file; default home/memory.db")
    short_term_backend: Literal["auto", "memory", "sql", "redis"] = Field(
        "auto", description="auto: Redis when storage.redis_url is set, else the database"
    )
    short_term_max_tokens: int = Field(4096, ge=64, description="Token budget of a thread window")
    short_term_ttl_s: float | None = Field(86400.0, gt=0, description="Idle threads expire")
    consolidation_interval_s: float = Field(
        300.0, ge=0, description="Background consolidation period; 0 turns it off"
    )
    max_summary_calls: int = Field(1, ge=0, le=16, description="Summarizer calls per batch")
    chunk_tokens: int = Field(200, ge=16, le=8192, description="Knowledge chunk size (tokens)")
    chunk_overlap_tokens: int = Field(32, ge=0, le=1024)
    knowledge_sync_interval_s: float = Field(
        600.0, ge=0, description="The server re-syncs knowledge folders this often; 0: never"
    )
    knowledge_watch: bool = Field(
        True, description="The server re-syncs a knowledge folder as soon as a file in it changes"
    )
    knowledge_urls: bool = Field(
        True,
        description="Web pages may be knowledge sources (fetched under tools.http_allowed_*;"
        " never loopback or private addresses unless tools.http_allowed_networks exempts them)",
    )


class AgentRoutingSettings(Section):
    """How learned routers of agent specs (``route:``) learn from run outcomes."""

    min_updates: int = Field(20, ge=0, description="Outcomes before the router decides alone")
    epsilon: float = Field(0.2, ge=0, le=1, description="Exploration while untrained")
    alpha: float = Field(1.0, ge=0, description="Exploration bonus once trained (LinUCB)")
    cost_per_usd: float = Field(100.0, ge=0, description="Reward lost per USD a run costs")
    latency_per_s: float = Field(0.0, ge=0, description="Reward lost per second a run takes")
    embedding_dim: int = Field(256, ge=8, le=4096, description="Hashed task features")


class AgentsSettings(Section):
    """Agents runtime: durable run workers, checkpoints, webhooks, learned routing."""

    runs_url: str | None = Field(
        None, description="DBOS system database for runs; default home/agent-runs.db"
    )
    checkpoints_path: Path | None = Field(
        None, description="Thread checkpoints (SQLite); default home/agent-threads.db"
    )
    worker_concurrency: int = Field(4, ge=1, le=256, description="Runs executed at once")
    graphs: list[str] = Field(
        default_factory=list,
        description="module:attribute naming dicts of compiled graphs runnable by name",
    )
    webhook_secret: SecretStr | None = Field(None, description="HMAC key for run webhooks")
    webhook_max_attempts: int = Field(5, ge=1, le=20)
    webhook_backoff_s: float = Field(1.0, ge=0, description="First retry delay, doubling")
    webhook_timeout_s: float = Field(10.0, gt=0)
    routing: AgentRoutingSettings = Field(default_factory=AgentRoutingSettings)


class RunsSettings(Section):
    """Where agent and graph runs execute, and how workers watch over each other."""

    workers: int | None = Field(
        None,
        ge=0,
        le=256,
        description=(
            "Runs this server executes at once: unset = agents.worker_concurrency in-process;"
            " 0 = only enqueue (`roost worker` processes execute them)"
        ),
    )
    heartbeat_interval_s: float = Field(2.0, gt=0, le=60, description="Worker heart-beat period")
    takeover_after_s: float = Field(
        10.0, gt=0, le=600, description="A worker silent this long has its runs taken over"
    )
    events_poll_s: float = Field(
        0.25, gt=0, le=10, description="How often subscribers re-read run events with no notifier"
    )


class LimitValues(Section):
    """Limits of one scope (a tenant, or one API key). In an override, unset inherits the
    default; 0 means no limit."""

    requests_per_minute: int | None = Field(None, ge=0, description="Token bucket of requests")
    tokens_per_minute: int | None = Field(
        None, ge=0, description="Token bucket of model tokens (prompt + max_tokens, then actual)"
    )
    concurrency: int | None = Field(None, ge=0, description="Model requests in flight at once")


class LimitOverride(Section):
    """Per-tenant override: the tenant's own limits and those of each of its keys."""

    tenant: LimitValues = Field(default_factory=LimitValues)
    key: LimitValues = Field(default_factory=LimitValues)


class AuthThrottleSettings(Section):
    """Brute-force throttling of failed API key attempts."""

    failures_per_key: int = Field(
        10, ge=0, description="Failed attempts per key id per window (0: off)"
    )
    failures_per_address: int = Field(
        30, ge=0, description="Failed attempts per client address per window (0: off)"
    )
    window_s: float = Field(300.0, gt=0, description="The window; attempts refill evenly over it")


class LimitsSettings(Section):
    """Rate, token and concurrency limits per tenant and per key, shared by every server."""

    enabled: bool = True
    store: Literal["auto", "redis", "database"] = Field(
        "auto", description="auto: Redis when storage.redis_url is set, else the database"
    )
    tenant: LimitValues = Field(
        default_factory=lambda: LimitValues(
            requests_per_minute=3000, tokens_per_minute=2_000_000, concurrency=64
        )
    )
    key: LimitValues = Field(
        default_factory=lambda: LimitValues(
            requests_per_minute=1200, tokens_per_minute=1_000_000, concurrency=32
        )
    )
    tenants: dict[str, LimitOverride] = Field(
        default_factory=dict, description="Tenant id -> overrides (also set by `roost limits`)"
    )
    auth: AuthThrottleSettings = Field(default_factory=AuthThrottleSettings)
    lease_ttl_s: float = Field(
        900.0, gt=0, description="A concurrency slot left by a crashed process frees after this"
    )
    overrides_refresh_s: float = Field(
        2.0, ge=0, description="How long a server reuses per-tenant overrides read from the store"
    )


class BackupSettings(Section):
    """Where ``roost backup`` writes archives, and the server's scheduled backups."""

    directory: Path | None = Field(None, description="Archives; default home/backups")
    every: str | None = Field(
        None, description="Scheduled backup period run by the server (30m, 24h, 7d); unset: off"
    )
    keep: int = Field(7, ge=1, le=10_000, description="Scheduled archives kept (oldest go first)")
    with_kv: bool = Field(False, description="Scheduled backups include the KV cold tier")

    @field_validator("every")
    @classmethod
    def _duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)
        return value


class EmbeddingCacheSettings(Section):
    """Vectors of texts already embedded, so unchanged text is never embedded twice."""

    enabled: bool = True
    max_entries: int = Field(200_000, ge=1, description="LRU bound on cached vectors")
    ttl_s: float | None = Field(None, gt=0, description="Entries unused this long expire")


PiiAction = Literal["off", "detect", "mask", "block"]
InjectionAction = Literal["off", "detect", "mark", "block"]


class GuardrailTenantPolicy(Section):
    """One tenant's guardrail policy; unset fields take the ``[guardrails]`` defaults."""

    input: PiiAction | None = None
    tool_output: PiiAction | None = None
    output: PiiAction | None = None
    injection: InjectionAction | None = None
    kinds: list[str] | None = None


class GuardrailsSettings(Section):
    """PII and prompt-injection guardrails on chat and agent runs (docs/security.md)."""

    input: PiiAction = Field("off", description="PII in client/user messages")
    tool_output: PiiAction = Field("off", description="PII in tool results")
    output: PiiAction = Field("off", description="PII in model answers")
    # "detect" by default: the bundled 135M model misreads enveloped tool results (its
    # example agents stop using the tools' answers), so delimiting is a setting to turn on.
    injection: InjectionAction = Field(
        "detect",
        description="Tool results: detect (count), mark (also delimit as untrusted data),"
        " block (also refuse when the heuristics fire)",
    )
    kinds: list[str] | None = Field(None, description="PII kinds checked (default: all)")
    mask_traces: bool = Field(True, description="Mask PII in content kept on trace spans")
    tenants: dict[str, GuardrailTenantPolicy] = Field(
        default_factory=dict, description="Per-tenant overrides, by tenant name or id"
    )


class CacheSettings(Section):
    """Caches the cache manager (``roost cache``) governs beyond those configured with their
    layer (engine.session_cache, engine.enable_prefix_cache, llm.cache)."""

    embeddings: EmbeddingCacheSettings = Field(default_factory=EmbeddingCacheSettings)
    vector_cache_vectors: int = Field(
        500_000, ge=0, description="Vectors held in RAM for exact search (LRU by namespace)"
    )


class PromptSettings(Section):
    """Managed prompts: how long a resolution is cached in each process."""

    cache_ttl_s: float = Field(10.0, ge=0, description="A moved label is seen within this")
    stale_for_s: float = Field(
        300.0, ge=0, description="Serve a cached prompt this much longer while the store is down"
    )


class EvalSettings(Section):
    """Evaluations and experiments."""

    concurrency: int = Field(2, ge=1, le=64, description="Dataset items run at once per eval")
    python_scorers: list[str] = Field(
        default_factory=list,
        description="module:function scorers tenants may name; operator-installed code, run"
        " in the server process",
    )
    judge_max_tokens: int = Field(16, ge=1, le=1024)


class Settings(BaseSettings):
    """Everything Roost reads from configuration. Build it with :func:`load_settings`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter="__", extra="forbid", validate_assignment=True
    )

    @classmethod
    def settings_customise_sources(
        cls, settings_cls: type[BaseSettings], init_settings: Any, *_sources: Any, **_kw: Any
    ) -> tuple[Any, ...]:
        # load_settings is the one reader of the environment (it knows which ROOST_*
        # variables name settings and warns about the rest): only its data counts here.
        return (init_settings,)

    home: Path = Field(Path("~/.roost"), description="Where data lives")
    server: ServerSettings = Field(default_factory=ServerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    secrets: SecretsSettings = Field(default_factory=SecretsSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    tracing: TracingSettings = Field(default_factory=TracingSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    memory: MemorySettings = Field(default_factory=MemorySettings)
    llm: LLMSettings = Field(default_factory=LLMSettings)
    tools: ToolsSettings = Field(default_factory=ToolsSettings)
    agents: AgentsSettings = Field(default_factory=AgentsSettings)
    runs: RunsSettings = Field(default_factory=RunsSettings)
    limits: LimitsSettings = Field(default_factory=LimitsSettings)
    backup: BackupSettings = Field(default_factory=BackupSettings)
    cache: CacheSettings = Field(default_factory=CacheSettings)
    guardrails: GuardrailsSettings = Field(default_factory=GuardrailsSettings)
    prompts: PromptSettings = Field(default_factory=PromptSettings)
    evals: EvalSettings = Field(default_factory=EvalSettings)
    plugins: list[str] = Field(
        default_factory=list,
        description=(
            "module[:function] called with the kernel at start (default function: register),"
            " to add models, toolsets and graphs in servers and workers alike"
        ),
    )

    @field_validator("home")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def database_url(self) -> str:
        """The storage URL, defaulting to an embedded SQLite file under ``home``."""
        return self.storage.url or f"sqlite:///{self.home / 'roost.db'}"


def parse_duration(value: str) -> float:
    """Seconds in a duration written ``90s``, ``30m``, ``24h`` or ``7d``."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    number, unit = value.strip()[:-1], value.strip()[-1:].lower()
    try:
        seconds = float(number) * units[unit]
    except (KeyError, ValueError):
        raise ValueError(f"{value!r} is not a duration like 30m, 24h or 7d") from None
    if seconds <= 0:
        raise ValueError(f"{value!r} must be positive")
    return seconds


def find_config_file(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """The config file to read, or None when there is none (defaults and env only)."""
    chosen = explicit or env.get("ROOST_CONFIG")
    if chosen:
        return Path(chosen).expanduser()
    local = Path("roost.toml")
    if local.is_file():
        return local
    home = Path(env.get("ROOST_HOME", "~/.roost")).expanduser()
    candidate = home / "roost.toml"
    return candidate if candidate.is_file() else None


def load_settings(
    config_file: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    *,
    warn: Callable[[str], None] | None = None,
) -> Settings:
    """Read, merge and validate configuration; raise :class:`ConfigError` listing every
    problem. ``ROOST_*`` variables that name no setting are left out and passed to
    ``warn`` (default: logged)."""
    env = os.environ if env is None else env
    problems: list[tuple[str, str]] = []
    path = find_config_file(config_file, env)
    data: dict[str, Any] = {}
    origin: dict[tuple[str, ...], str] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
            for key in _leaf_keys(data):
                origin[key] = str(path)
        except FileNotFoundError:
            problems.append(("config", f"file {path} does not exist"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            problems.append(("config", f"cannot read {path}: {exc}"))
    for name, value in env.items():
        if not name.startswith(ENV_PREFIX) or name in ENV_LOADER_VARS:
            continue
        keys = ENV_ALIASES.get(name) or tuple(
            part.lower() for part in name[len(ENV_PREFIX) :].split("__")
        )
        if not _names_setting(Settings, keys):
            _warn_unknown(warn, f"{name} is not a Roost setting; ignored (see roost config show)")
            continue
        _set_nested(data, keys, _env_value(value))
        origin[keys] = name
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(str(part) for part in err["loc"])
            source = origin.get(loc)
            where = ".".join(loc) + (f" (from {source})" if source else "")
            reason = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append((where, reason))
    if problems:
        raise ConfigError(problems)
    return settings


def _names_setting(model: type[BaseModel], keys: tuple[str, ...]) -> bool:
    """Whether ``keys`` lead to a field of ``model``: through nested sections, and into
    any table-valued field (its keys are the operator's own names)."""
    field = model.model_fields.get(keys[0])
    if field is None:
        return False
    if len(keys) == 1:
        return True
    annotation = field.annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _names_setting(annotation, keys[1:])
    return True  # a table (dict) field, or a value that validation reports on


def _warn_unknown(warn: Callable[[str], None] | None, message: str) -> None:
    if warn is not None:
        warn(message)
        return
    from roost.observe.logging import get_logger

    get_logger("roost.config").warning(message)


def _env_value(value: str) -> Any:
    """A list or table setting is written as JSON in an environment variable
    (``ROOST_PLUGINS='["my.plugin"]'``); anything else is the string itself."""
    if value.lstrip().startswith(("[", "{")):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # validation names the key and why
    return value


def redact_url(url: str) -> str:
    """The URL with any password replaced by ``***``, safe for logs and error messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:***@{host}" if parts.username else f"***@{host}"
    return urlunsplit(parts._replace(netloc=netloc))


def _set_nested(data: dict[str, Any], keys: tuple[str, ...], value: Any) -> None:
    node = data
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


def _leaf_keys(data: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    keys: list[tuple[str, ...]] = []
    for key, value in data.items():
        if isinstance(value, Mapping):
            keys.extend(_leaf_keys(value, (*prefix, key)))
        else:
            keys.append((*prefix, key))
    return keys
