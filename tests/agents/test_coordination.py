"""Coordination sessions through the API: turn, round, whisper, vote, streaming."""

from __future__ import annotations

import json

from roost.llm.testing import CallInfo, FunctionModel
from tests.agents.test_api import sse_events
from tests.server.conftest import AppFactory


def participant(info: CallInfo) -> str:
    me = (info.context.cache_identity or "").rsplit(":", 1)[-1] if info.context else "?"
    last = info.messages[-1].text
    if last.startswith("Vote:"):
        return json.dumps({"choice": "tea" if me == "alice" else "coffee"}) if me != "carol" \
            else "I refuse to vote"  # fmt: skip
    secrets = [m.text for m in info.messages if m.text.startswith("[private]")]
    heard = [m.text for m in info.messages if m.role == "user" and m.text.startswith("[")]
    return f"{me} heard {len(heard)}" + (f" and knows {secrets[-1]}" if secrets else "")


async def test_round_whisper_vote_and_stream(make_app: AppFactory, auth: dict[str, str]) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        model = FunctionModel(participant, "function:talk")
        app.state.llm.router.registry.register(model)
        for name in ("alice", "bob", "carol"):
            spec = {"name": name, "model": "function:talk", "instructions": f"You are {name}."}
            assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
        created = await client.post(
            "/v1/coordination/sessions",
            json={"topic": "what to drink", "agents": ["alice", "bob", "carol"]},
        )
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        base = f"/v1/coordination/sessions/{sid}"

        spoken = (await client.post(f"{base}/round", json={"message": "Opinions?"})).json()["data"]
        # each hears the moderator plus everyone who spoke before it in the round
        assert [s["content"] for s in spoken] == ["alice heard 1", "bob heard 2", "carol heard 3"]
        identities = [c.context.cache_identity for c in model.calls if c.context]
        assert identities == [f"{sid}:alice", f"{sid}:bob", f"{sid}:carol"]

        private = await client.post(f"{base}/whisper", json={"agent": "bob", "message": "psst"})
        assert private.json() == {"agent": "bob", "content": "bob heard 4 and knows [private] psst",
                                  "private": True}  # fmt: skip
        alice = (await client.post(f"{base}/turn", json={"agent": "alice"})).json()
        assert "knows" not in alice["content"]  # whispers stay with their recipient
        session = (await client.get(base)).json()
        assert all("psst" not in e["content"] for e in session["transcript"])

        async with client.stream(
            "POST", f"{base}/turn", json={"agent": "bob", "stream": True}
        ) as response:
            events = await sse_events(response)
        tokens = "".join(e["text"] for e in events if "text" in e)
        assert tokens.startswith("bob heard 5 and knows [private] psst")
        assert events[-1]["data"][0]["speaker"] == "bob"

        ballot = await client.post(
            f"{base}/vote", json={"question": "tea or coffee?", "options": ["tea", "coffee"]}
        )
        result = ballot.json()
        assert result["tally"] == {"tea": 1, "coffee": 1} and result["winner"] is None
        assert result["votes"]["carol"]["choice"] is None  # an invalid ballot is not counted

        unknown = await client.post(f"{base}/turn", json={"agent": "mallory"})
        assert unknown.status_code == 400
        missing = await client.post(
            "/v1/coordination/sessions", json={"topic": "x", "agents": ["ghost"]}
        )
        assert missing.status_code == 404


async def test_v1_coordinate_is_an_alias_of_the_sessions_api(
    make_app: AppFactory, auth: dict[str, str]
) -> None:
    async with make_app() as (app, client):
        client.headers.update(auth)
        model = FunctionModel(participant, "function:talk")
        app.state.llm.router.registry.register(model)
        for name in ("alice", "bob"):
            spec = {"name": name, "model": "function:talk", "instructions": f"You are {name}."}
            assert (await client.post("/v1/agents", json={"spec": spec})).status_code == 201
        created = await client.post(
            "/v1/coordinate", json={"topic": "what to drink", "agents": ["alice", "bob"]}
        )
        assert created.status_code == 201, created.text
        sid = created.json()["id"]
        spoken = (await client.post(f"/v1/coordinate/{sid}/round", json={"message": "Hi"})).json()
        assert [s["content"] for s in spoken["data"]] == ["alice heard 1", "bob heard 2"]
        # one session, whichever path: the sessions API sees what the alias said
        via_sessions = (await client.get(f"/v1/coordination/sessions/{sid}")).json()
        assert via_sessions == (await client.get(f"/v1/coordinate/{sid}")).json()
        assert [e["content"] for e in via_sessions["transcript"]][-2:] == spoken_texts(spoken)
        assert (await client.get("/v1/coordinate/cs_missing")).status_code == 404
        assert (await client.post("/v1/coordinate", json={"topic": "x"})).status_code in (400, 422)


def spoken_texts(body: dict[str, list[dict[str, str]]]) -> list[str]:
    return [s["content"] for s in body["data"]]
