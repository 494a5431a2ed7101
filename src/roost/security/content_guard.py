"""The content guard: PII and prompt-injection policy applied to text at three stages.

``input`` (what a client or a run's user sends), ``tool_output`` (what a tool returned)
and ``output`` (what the model answered). Per stage the tenant's policy (``[guardrails]``
with ``[guardrails.tenants.<name or id>]`` overrides, then the agent's ``pii`` field)
says ``off | detect | mask | block``. Every decision other than a clean pass is counted
in ``roost_guardrail_decisions_total{kind,action}``; every mask and block is audited.

A detector that raises fails closed: the text is blocked, never passed on unchecked.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from prometheus_client import Counter

from roost.agents.guardrails import GuardrailBlocked, GuardrailRegistry, GuardrailResult
from roost.config import GuardrailsSettings
from roost.observe.logging import get_logger
from roost.observe.metrics import REGISTRY
from roost.security.audit import AuditLog
from roost.security.injection import injection_signals, mark_untrusted
from roost.security.pii import KINDS, PiiMatch, find_pii, mask_text

Stage = Literal["input", "tool_output", "output"]
Detector = Callable[[str, Sequence[str] | None], list[PiiMatch]]
TenantName = Callable[[str], Awaitable[str | None]]

log = get_logger("roost.security")
DECISIONS = Counter(
    "roost_guardrail_decisions",
    "Guardrail decisions other than a clean pass, by what was found and what was done",
    ["kind", "action"],
    registry=REGISTRY,
)


@dataclass(frozen=True, slots=True)
class GuardPolicy:
    input: str = "off"
    tool_output: str = "off"
    output: str = "off"
    injection: str = "detect"
    kinds: tuple[str, ...] | None = None

    def action(self, stage: Stage) -> str:
        return str(getattr(self, stage))

    def merged(self, override: Mapping[str, Any] | None) -> GuardPolicy:
        """This policy with the set fields of ``override`` (a tenant's or an agent's)."""
        if not override:
            return self
        fields = {k: v for k, v in override.items() if v is not None and k in _FIELDS}
        if "kinds" in fields:
            fields["kinds"] = tuple(fields["kinds"])
        return replace(self, **fields)


_FIELDS = frozenset({"input", "tool_output", "output", "injection", "kinds"})


@dataclass(frozen=True, slots=True)
class Screened:
    text: str
    kinds: tuple[str, ...] = ()  # PII kinds found
    signals: tuple[str, ...] = ()  # injection techniques seen


class ContentGuard:
    def __init__(
        self,
        settings: GuardrailsSettings,
        audit: AuditLog | None = None,
        *,
        tenant_name: TenantName | None = None,
        detector: Detector = find_pii,
    ) -> None:
        unknown = sorted(set(settings.kinds or ()) - set(KINDS))
        if unknown:
            raise ValueError(f"guardrails.kinds: unknown {unknown} (known: {', '.join(KINDS)})")
        self.settings = settings
        self.audit = audit
        self.detector = detector
        self.tenant_name = tenant_name
        self.default = GuardPolicy(
            settings.input, settings.tool_output, settings.output, settings.injection,
            tuple(settings.kinds) if settings.kinds is not None else None,
        )  # fmt: skip
        self._by_id: dict[str, GuardPolicy] = {}

    async def policy(self, tenant_id: str, agent: Mapping[str, Any] | None = None) -> GuardPolicy:
        """The tenant's policy (overrides by id or name), then the agent's fields."""
        policy = self._by_id.get(tenant_id)
        if policy is None:
            override = self.settings.tenants.get(tenant_id)
            if override is None and self.settings.tenants and self.tenant_name is not None:
                name = await self.tenant_name(tenant_id)
                override = self.settings.tenants.get(name) if name else None
            policy = self.default.merged(override.model_dump() if override else None)
            self._by_id[tenant_id] = policy
        return policy.merged(agent)

    def _detect(self, text: str, policy: GuardPolicy) -> list[PiiMatch]:
        try:
            return self.detector(text, policy.kinds)
        except Exception as exc:  # any detector failure: block rather than pass unchecked
            DECISIONS.labels("detector_error", "block").inc()
            log.exception("PII detector failed; blocking (guardrails fail closed)")
            raise GuardrailBlocked(
                "the PII guardrail could not check this text, so it was blocked"
                " (guardrails fail closed)"
            ) from exc

    async def screen(
        self,
        tenant_id: str,
        stage: Stage,
        text: str,
        *,
        actor: str,
        agent: Mapping[str, Any] | None = None,
        target: str | None = None,
        source: str = "tool",
    ) -> Screened:
        """``text`` after the policy for ``stage``: unchanged, masked, or GuardrailBlocked.
        Tool outputs are also checked for injection and, with ``mark`` or ``block``, come
        back delimited as untrusted data."""
        policy = await self.policy(tenant_id, agent)
        action = policy.action(stage)
        kinds: tuple[str, ...] = ()
        if action != "off" and text:
            try:
                matches = self._detect(text, policy)
            except GuardrailBlocked:
                await self._audit(tenant_id, actor, stage, "block", ("detector_error",), target)
                raise
            if matches:
                kinds = tuple(sorted({m.kind for m in matches}))
                for kind in kinds:
                    DECISIONS.labels(kind, action).inc()
                if action in ("mask", "block"):
                    await self._audit(tenant_id, actor, stage, action, kinds, target)
                if action == "block":
                    raise GuardrailBlocked(
                        f"{stage.replace('_', ' ')} contains personal data ({', '.join(kinds)})"
                        " and this tenant's guardrail policy blocks it"
                    )
                if action == "mask":
                    text = mask_text(text, matches)
        signals: tuple[str, ...] = ()
        if stage == "tool_output" and policy.injection != "off":
            signals = tuple(injection_signals(text))
            if signals:
                DECISIONS.labels("injection", policy.injection).inc()
                if policy.injection == "block":
                    await self._audit(tenant_id, actor, stage, "block", ("injection",), target,
                                      signals=signals)  # fmt: skip
                    raise GuardrailBlocked(
                        f"tool output looks like a prompt injection ({', '.join(signals)})"
                    )
            if policy.injection in ("mark", "block"):
                text = mark_untrusted(text, source)
        return Screened(text, kinds, signals)

    async def screen_text(
        self,
        tenant_id: str,
        stage: str,
        text: str,
        *,
        actor: str,
        agent: Mapping[str, Any] | None = None,
        target: str | None = None,
        source: str = "tool",
    ) -> str:
        """:meth:`screen`'s text (the agents runtime's view of the guard)."""
        if stage not in ("input", "tool_output", "output"):
            raise ValueError(f"unknown guardrail stage {stage!r}")
        screened = await self.screen(
            tenant_id, stage, text, actor=actor, agent=agent, target=target,  # type: ignore[arg-type]
            source=source,
        )  # fmt: skip
        return screened.text

    def mask_for_trace(self, tenant_id: str, text: str) -> str:
        """Trace content with PII masked (sync: the trace writer calls it); a detector
        error drops the content rather than keep it unmasked."""
        if not self.settings.mask_traces or not text:
            return text
        policy = self._by_id.get(tenant_id, self.default)
        try:
            try:  # span content is JSON: mask inside its strings (escapes would hide PII)
                value = json.loads(text)
            except ValueError:
                return mask_text(text, self.detector(text, policy.kinds))
            return json.dumps(self._mask_json(value, policy), ensure_ascii=False)
        except Exception:
            DECISIONS.labels("detector_error", "block").inc()
            return "[content withheld: the PII guardrail failed]"

    def _mask_json(self, value: Any, policy: GuardPolicy) -> Any:
        if isinstance(value, str):
            return mask_text(value, self.detector(value, policy.kinds))
        if isinstance(value, list):
            return [self._mask_json(v, policy) for v in value]
        if isinstance(value, dict):
            return {k: self._mask_json(v, policy) for k, v in value.items()}
        return value

    async def _audit(
        self,
        tenant_id: str,
        actor: str,
        stage: str,
        action: str,
        kinds: Sequence[str],
        target: str | None,
        **extra: Any,
    ) -> None:
        if self.audit is None:
            return
        details = {"stage": stage, "kinds": list(kinds), **{k: list(v) for k, v in extra.items()}}
        await self.audit.record(
            tenant_id, actor, f"guardrail.{action}", target=target,
            outcome="blocked" if action == "block" else "ok", details=details,
        )  # fmt: skip


def register_guardrails(registry: GuardrailRegistry, guard: ContentGuard) -> None:
    """Name the detectors for specs' ``guardrails:`` lists: ``pii`` (repair: mask; a
    detector error fails the check) and ``prompt_injection``."""

    async def pii(text: str, options: Mapping[str, Any]) -> GuardrailResult:
        kinds = options.get("kinds")
        try:
            matches = guard.detector(text, list(kinds) if kinds else None)
        except Exception:
            DECISIONS.labels("detector_error", "block").inc()
            log.exception("PII detector failed; the check fails (guardrails fail closed)")
            return GuardrailResult(False, "the PII detector failed (fail closed)")
        if not matches:
            return GuardrailResult(True)
        found = sorted({m.kind for m in matches})
        return GuardrailResult(
            False, f"personal data: {', '.join(found)}", mask_text(text, matches)
        )

    async def prompt_injection(text: str, options: Mapping[str, Any]) -> GuardrailResult:
        signals = injection_signals(text)
        if not signals:
            return GuardrailResult(True)
        return GuardrailResult(False, f"prompt injection: {', '.join(signals)}")

    registry.register("pii", pii)
    registry.register("prompt_injection", prompt_injection)
