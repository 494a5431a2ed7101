"""Coordination sessions (seed 000's multi-agent API): several agents discuss one topic.

``turn`` lets one agent speak, ``round`` every agent in order, ``whisper`` sends one agent
a private message (its reply stays private too), ``vote`` asks every agent to pick an
option. Each agent sees the public transcript plus its own whispers and is called with
its own cache identity (``<session>:<agent>``), so a local model keeps one KV cache per
participant and only prefills what was said since that agent last spoke.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from roost.agents.output import validate_output
from roost.agents.registry import AgentRegistry
from roost.agents.runtime import ModelCaller
from roost.errors import InvalidRequest, NotFound
from roost.llm.base import RequestContext
from roost.llm.messages import Message, ModelSettings, Response, ResponseDone, TextDelta
from roost.storage import Database, Row, new_id, now_ms

TokenSink = Callable[[str, str], None]  # (agent, text)


@dataclass(slots=True)
class Session:
    id: str
    tenant_id: str
    topic: str
    agents: list[str]
    transcript: list[dict[str, Any]] = field(default_factory=list)
    whispers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    created_at: int = 0
    updated_at: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "coordination.session",
            "topic": self.topic,
            "agents": self.agents,
            "transcript": self.transcript,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


def _session(row: Row) -> Session:
    return Session(
        str(row["id"]), str(row["tenant_id"]), str(row["topic"]), json.loads(row["agents"]),
        json.loads(row["transcript"]), json.loads(row["whispers"]), int(row["created_at"]),
        int(row["updated_at"]),
    )  # fmt: skip


class CoordinationService:
    """Sessions stored in the database; agents answer through the LLM layer."""

    def __init__(self, database: Database, registry: AgentRegistry, llm: ModelCaller) -> None:
        self.database = database
        self.registry = registry
        self.llm = llm

    async def create(self, tenant_id: str, topic: str, agents: list[str]) -> Session:
        if len(set(agents)) != len(agents) or not agents:
            raise InvalidRequest("agents must be one or more distinct names", param="agents")
        for name in agents:
            await self.registry.get(tenant_id, name)
        now = now_ms()
        session = Session(new_id("coord"), tenant_id, topic, agents, [], {}, now, now)
        await self.database.execute(
            "INSERT INTO coordination_sessions (id, tenant_id, topic, agents, transcript,"
            " whispers, created_at, updated_at) VALUES (:i, :t, :p, :a, '[]', '{}', :c, :c)",
            {"i": session.id, "t": tenant_id, "p": topic, "a": json.dumps(agents), "c": now},
        )
        return session

    async def get(self, tenant_id: str, session_id: str) -> Session:
        row = await self.database.fetch_one(
            "SELECT * FROM coordination_sessions WHERE tenant_id = :t AND id = :i",
            {"t": tenant_id, "i": session_id},
        )
        if row is None:
            raise NotFound(f"no coordination session {session_id!r}", param="session_id")
        return _session(row)

    async def turn(
        self,
        tenant_id: str,
        session_id: str,
        agent: str,
        message: str | None = None,
        *,
        on_token: TokenSink | None = None,
    ) -> dict[str, Any]:
        """``agent`` speaks (after ``message``, from the moderator, joins the transcript)."""
        session = await self.get(tenant_id, session_id)
        if message:
            session.transcript.append({"speaker": "moderator", "content": message})
        entry = await self._speak(session, agent, on_token)
        await self._save(session)
        return entry

    async def round(
        self, tenant_id: str, session_id: str, message: str | None = None, *,
        on_token: TokenSink | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """Every agent speaks once, in the session's order, each hearing the ones before."""
        session = await self.get(tenant_id, session_id)
        if message:
            session.transcript.append({"speaker": "moderator", "content": message})
        spoken = [await self._speak(session, agent, on_token) for agent in session.agents]
        await self._save(session)
        return spoken

    async def whisper(
        self, tenant_id: str, session_id: str, agent: str, message: str
    ) -> dict[str, Any]:
        """A private message to ``agent``; its private reply is returned, not broadcast."""
        session = await self.get(tenant_id, session_id)
        self._check_member(session, agent)
        private = session.whispers.setdefault(agent, [])
        private.append({"speaker": "moderator", "content": message, "at": len(session.transcript)})
        response = await self._ask(session, agent, private_reply=True)
        reply = {"speaker": agent, "content": response.text, "at": len(session.transcript)}
        private.append(reply)
        await self._save(session)
        return {"agent": agent, "content": response.text, "private": True}

    async def vote(
        self, tenant_id: str, session_id: str, question: str, options: list[str]
    ) -> dict[str, Any]:
        """Every agent picks one option (structured output); returns votes, tally and winner."""
        if len(options) < 2:
            raise InvalidRequest("a vote needs at least two options", param="options")
        session = await self.get(tenant_id, session_id)
        schema = {"type": "object", "required": ["choice"],
                  "properties": {"choice": {"enum": options}, "reason": {"type": "string"}}}  # fmt: skip
        ballot = (
            f"Vote: {question}\nOptions: {', '.join(options)}\n"
            f'Reply with only JSON like {{"choice": "{options[0]}", "reason": "..."}}.'
        )
        votes: dict[str, Any] = {}
        for agent in session.agents:
            response = await self._ask(session, agent, extra=ballot)
            value, error = validate_output(response.text, schema)
            votes[agent] = value if error is None else {"choice": None, "error": error}
        tally = {o: sum(1 for v in votes.values() if v.get("choice") == o) for o in options}
        top = max(tally.values())
        winners = [o for o, n in tally.items() if n == top and n > 0]
        result = {"question": question, "votes": votes, "tally": tally,
                  "winner": winners[0] if len(winners) == 1 else None}  # fmt: skip
        session.transcript.append({"speaker": "moderator", "content": f"Vote on {question!r}: "
                                   f"{json.dumps(tally)}", "vote": result})  # fmt: skip
        await self._save(session)
        return result

    # -- internals ----------------------------------------------------------------------
    def _check_member(self, session: Session, agent: str) -> None:
        if agent not in session.agents:
            raise InvalidRequest(f"{agent!r} is not in this session", param="agent")

    async def _speak(
        self, session: Session, agent: str, on_token: TokenSink | None
    ) -> dict[str, Any]:
        self._check_member(session, agent)
        response = await self._ask(session, agent, on_token=on_token)
        entry = {"speaker": agent, "content": response.text}
        session.transcript.append(entry)
        return entry

    async def _ask(
        self,
        session: Session,
        agent: str,
        *,
        extra: str | None = None,
        private_reply: bool = False,
        on_token: TokenSink | None = None,
    ) -> Response:
        found = await self.registry.get(session.tenant_id, agent)
        spec = found.spec
        others = ", ".join(a for a in session.agents if a != agent) or "nobody"
        system = (
            f"{spec.render_instructions()}\nYou are {agent}, in a discussion about: "
            f"{session.topic}. Also taking part: {others}. Speak only for yourself."
        )
        messages = [Message.system(system), *self._view(session, agent)]
        if extra:
            messages.append(Message.user(extra))
        if private_reply:
            messages.append(
                Message.user("(Answer the private message; only the moderator sees it.)")
            )
        context = RequestContext(session.tenant_id, agent_id=agent,
                                 cache_identity=f"{session.id}:{agent}")  # fmt: skip
        settings = ModelSettings(max_tokens=spec.max_tokens, temperature=spec.temperature)
        final: Response | None = None
        async for event in self.llm.request_stream(spec.model, messages, settings, (),
                                                   context=context):  # fmt: skip
            if isinstance(event, TextDelta) and on_token is not None:
                on_token(agent, event.text)
            elif isinstance(event, ResponseDone):
                final = event.response
        assert final is not None
        return final

    def _view(self, session: Session, agent: str) -> list[Message]:
        """The transcript as ``agent`` sees it: its own turns as assistant, whispers in place."""
        whispers = session.whispers.get(agent, [])
        messages: list[Message] = []
        for index in range(len(session.transcript) + 1):
            for item in whispers:
                if item["at"] == index:
                    if item["speaker"] == agent:
                        messages.append(Message.assistant(item["content"]))
                    else:
                        messages.append(Message.user(f"[private] {item['content']}"))
            if index < len(session.transcript):
                entry = session.transcript[index]
                if entry["speaker"] == agent:
                    messages.append(Message.assistant(entry["content"]))
                else:
                    messages.append(Message.user(f"[{entry['speaker']}] {entry['content']}"))
        return messages

    async def _save(self, session: Session) -> None:
        session.updated_at = now_ms()
        await self.database.execute(
            "UPDATE coordination_sessions SET transcript = :tr, whispers = :w, updated_at = :u"
            " WHERE id = :i AND tenant_id = :t",
            {"tr": json.dumps(session.transcript), "w": json.dumps(session.whispers),
             "u": session.updated_at, "i": session.id, "t": session.tenant_id},
        )  # fmt: skip
