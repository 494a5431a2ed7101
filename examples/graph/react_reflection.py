"""Pattern 5, cyclic ReAct with reflection: think -> act -> observe -> reflect, looping
until the reflection says done. A risky tool call pauses for human approval
(``interrupt``) and the run resumes, from a durable SQLite checkpoint, with the answer.

The "model" is a scripted function so the example runs offline.

Run: .venv/bin/python examples/graph/react_reflection.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, TypedDict

from roost.graph import (
    END,
    START,
    Command,
    RetryPolicy,
    SqliteCheckpointer,
    StateGraph,
    add_messages,
    interrupt,
)

TOOLS = {
    "search": lambda arg: f"3 results for {arg!r}",
    "delete_file": lambda arg: f"deleted {arg}",
}
RISKY = {"delete_file"}


class Agent(TypedDict):
    messages: Annotated[list, add_messages]
    action: dict
    iterations: int


def scripted_model(messages: list[dict]) -> dict:
    """Decide the next action from what has been observed so far."""
    observed = [m["content"] for m in messages if m["role"] == "tool"]
    if not observed:
        return {"tool": "search", "arg": "stale build files"}
    if len(observed) == 1:
        return {"tool": "delete_file", "arg": "build/old.tmp"}
    return {"tool": None, "arg": "cleaned up the stale build file"}


def think(state: Agent) -> dict:
    action = scripted_model(state["messages"])
    note = f"plan: {action['tool'] or 'finish'} {action['arg']}"
    return {"action": action, "messages": [{"role": "assistant", "content": note}]}


def act(state: Agent) -> dict:
    action = state["action"]
    if action["tool"] is None:
        return {}
    if action["tool"] in RISKY:
        # The node re-runs from its start on resume; nothing before this line has effects.
        approved = interrupt({"approve": action})
        if approved != "yes":
            return {"messages": [{"role": "tool", "content": "denied by a human"}]}
    return {"messages": [{"role": "tool", "content": TOOLS[action["tool"]](action["arg"])}]}


def observe(state: Agent) -> dict:
    return {"iterations": state.get("iterations", 0) + 1}


def reflect(state: Agent) -> str:
    if state["action"]["tool"] is None or state["iterations"] >= 5:
        return "done"
    return "continue"


def build(checkpointer: SqliteCheckpointer):
    g = StateGraph(Agent)
    g.add_node("think", think, retry=RetryPolicy.llm())
    g.add_node("act", act, retry=RetryPolicy.tool(), timeout=30)
    g.add_node("observe", observe)
    g.add_edge(START, "think")
    g.add_edge("think", "act")
    g.add_edge("act", "observe")
    g.add_conditional_edges("observe", reflect, {"continue": "think", "done": END})
    return g.compile(checkpointer=checkpointer)


def main(workdir: Path | None = None) -> dict:
    db = (workdir or Path(tempfile.mkdtemp())) / "agent.db"
    graph = build(SqliteCheckpointer(db))
    goal = {"messages": [{"role": "user", "content": "clean up stale build files"}]}
    paused = graph.invoke(goal, thread_id="agent-1")
    (question,) = paused["__interrupt__"]
    print(f"paused: approve {question.value['approve']}?")

    # Later, maybe in another process: the thread is on disk, resume it by interrupt id.
    resumed_graph = build(SqliteCheckpointer(db))
    result = resumed_graph.invoke(Command(resume={question.id: "yes"}), thread_id="agent-1")
    for message in result["messages"]:
        print(f"{message['role']:9} {message['content']}")
    return result


if __name__ == "__main__":
    main()
