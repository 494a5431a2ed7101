"""Pattern 3, conditional branching: evaluate the input, route to a handler or a default.

Run: .venv/bin/python examples/graph/conditional.py
"""

from __future__ import annotations

from typing import TypedDict

from roost.graph import END, START, StateGraph


class Ticket(TypedDict):
    text: str
    kind: str
    reply: str


def evaluate(state: Ticket) -> dict:
    text = state["text"].lower()
    kind = "billing" if "invoice" in text else "bug" if "error" in text else "other"
    return {"kind": kind}


def route(state: Ticket) -> str:
    return state["kind"]


def billing(state: Ticket) -> dict:
    return {"reply": "Forwarded to billing; expect an answer within a day."}


def bug(state: Ticket) -> dict:
    return {"reply": "Filed a bug with the error text attached."}


def default(state: Ticket) -> dict:
    return {"reply": "Thanks! A person will read this soon."}


def build():
    g = StateGraph(Ticket)
    g.add_node("evaluate", evaluate)
    g.add_node("billing", billing)
    g.add_node("bug", bug)
    g.add_node("default", default)
    g.add_edge(START, "evaluate")
    g.add_conditional_edges(
        "evaluate", route, {"billing": "billing", "bug": "bug", "other": "default"}
    )
    for handler in ("billing", "bug", "default"):
        g.add_edge(handler, END)
    return g.compile()


def main() -> list[dict]:
    graph = build()
    results = [
        graph.invoke({"text": text})
        for text in ("Wrong invoice total", "Error 500 on login", "Love the product")
    ]
    for result in results:
        print(f"{result['kind']:8} -> {result['reply']}")
    return results


if __name__ == "__main__":
    main()
