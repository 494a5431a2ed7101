"""Memory benchmarks: retrieval quality, search latency, ingestion speed, consolidation recall.

- retrieval: the generated set in ``benchmarks/data/memory`` (2,000 documents, 350 queries:
  paraphrase, keyword-only, mixed) ingested through the knowledge base with the bundled
  all-MiniLM-L6-v2; recall@5 and MRR@10 for vector, keyword and hybrid search.
- ingestion: chunks per second for that ingestion (extract + chunk + embed + store).
- latency: p50/p95 of vector, keyword and hybrid search over N stored items (384-d unit
  vectors drawn at random, since embedding 100k texts would dominate the run; the store's
  work does not depend on where vectors came from) on SQLite, and PostgreSQL with ``--pg``.
- consolidation: a 200-turn conversation with 20 facts planted in its first 40 turns,
  a 1,024-token window; after it ran, how many facts long-term memory returns in its top 5.

Prints a table and writes ``benchmarks/results/memory.json``.
Run: ``python benchmarks/memory.py`` (``--sizes 10000`` for a quick run, ``--pg`` for pgvector).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))  # for tests.support when --pg is given
DATA = ROOT / "data" / "memory"
RESULTS = ROOT / "results"

from roost.llm.embeddings import Embedder, MiniLMEmbedder  # noqa: E402
from roost.memory.consolidation import ConsolidationPolicy, Consolidator, ExtractiveSummarizer  # noqa: E402
from roost.memory.knowledge import KnowledgeBase  # noqa: E402
from roost.memory.long_term import LongTermMemory  # noqa: E402
from roost.memory.pg_store import PgVectorStore  # noqa: E402
from roost.memory.schema import MEMORY_MIGRATIONS  # noqa: E402
from roost.memory.short_term import InProcessShortTermStore, ShortTermMemory  # noqa: E402
from roost.memory.sqlite_store import SqliteVectorStore  # noqa: E402
from roost.memory.vector_store import VectorItem, VectorStore  # noqa: E402
from roost.storage import Database, migrate  # noqa: E402

TENANT = "bench"


def load_jsonl(name: str) -> list[dict[str, Any]]:
    with (DATA / name).open() as rows:
        return [json.loads(line) for line in rows]


async def retrieval(embedder: Embedder, workdir: Path) -> dict[str, Any]:
    docs, queries = load_jsonl("docs.jsonl"), load_jsonl("queries.jsonl")
    database = await Database.connect(f"sqlite:///{workdir / 'roost.db'}")
    await migrate(database, MEMORY_MIGRATIONS)
    store = SqliteVectorStore(
        workdir / "retrieval.db", embedder_id=embedder.id, dimension=embedder.dimension
    )
    kb = KnowledgeBase(database, store, embedder)
    await kb.create_collection(TENANT, "bench")
    await embedder.embed(["warm up the model"])
    started = time.perf_counter()
    for doc in docs:
        await kb.add_text(TENANT, "bench", doc["id"], doc["text"])
    elapsed = time.perf_counter() - started
    sources = await kb.sources(TENANT, "bench")
    num_chunks = sum(s.num_chunks for s in sources)
    table: dict[str, Any] = {}
    for mode in ("vector", "keyword", "hybrid"):
        per_kind: dict[str, list[tuple[bool, float]]] = {}
        for query in queries:
            hits = await kb.search(TENANT, "bench", query["query"], k=10, mode=mode)
            ranks = [n for n, hit in enumerate(hits, start=1) if hit.uri in query["relevant"]]
            first = ranks[0] if ranks else None
            per_kind.setdefault(query["kind"], []).append(
                (first is not None and first <= 5, 1.0 / first if first else 0.0)
            )
        every = [row for rows in per_kind.values() for row in rows]
        table[mode] = {
            "recall@5": round(sum(hit for hit, _ in every) / len(every), 4),
            "mrr@10": round(sum(rr for _, rr in every) / len(every), 4),
            "by_kind": {
                kind: {
                    "recall@5": round(sum(h for h, _ in rows) / len(rows), 4),
                    "mrr@10": round(sum(r for _, r in rows) / len(rows), 4),
                    "n": len(rows),
                }
                for kind, rows in sorted(per_kind.items())
            },
        }
    await store.close()
    await database.close()
    return {
        "num_docs": len(docs),
        "num_queries": len(queries),
        "modes": table,
        "ingestion": {
            "chunks": num_chunks,
            "seconds": round(elapsed, 2),
            "chunks_per_s": round(num_chunks / elapsed, 1),
        },
    }


def random_items(
    count: int, dimension: int, rng: np.random.Generator, words: list[str]
) -> list[VectorItem]:
    vectors = rng.standard_normal((count, dimension)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    pick = random.Random(7)
    return [
        VectorItem(
            f"m{i}",
            "ltm:bench",
            " ".join(pick.choices(words, k=24)),
            vectors[i],
            {"kind": "fact", "importance": round(pick.random(), 2)},
        )
        for i in range(count)
    ]


async def latency(store: VectorStore, size: int, num_queries: int = 100) -> dict[str, Any]:
    words = sorted(
        {w.strip(".,()").lower() for d in load_jsonl("docs.jsonl") for w in d["text"].split()}
    )
    rng = np.random.default_rng(size)
    items = random_items(size, store.dimension, rng, words)
    started = time.perf_counter()
    for start in range(0, size, 1000):
        await store.upsert(TENANT, items[start : start + 1000])
    insert_s = time.perf_counter() - started
    pick = random.Random(11)
    result: dict[str, Any] = {"size": size, "insert_items_per_s": round(size / insert_s, 1)}
    for mode in ("vector", "keyword", "hybrid"):
        timings = []
        for _ in range(num_queries):
            query = rng.standard_normal(store.dimension).astype(np.float32)
            text = " ".join(pick.choices(words, k=4))
            began = time.perf_counter()
            await store.search(
                TENANT,
                "ltm:bench",
                text=text,
                vector=query / np.linalg.norm(query),
                k=10,
                mode=mode,
            )
            timings.append((time.perf_counter() - began) * 1000)
        timings.sort()
        result[mode] = {"p50_ms": round(statistics.median(timings), 2),
                        "p95_ms": round(timings[int(0.95 * len(timings)) - 1], 2)}  # fmt: skip
    filtered = []
    for _ in range(20):
        query = rng.standard_normal(store.dimension).astype(np.float32)
        began = time.perf_counter()
        await store.search(TENANT, "ltm:bench", vector=query / np.linalg.norm(query), k=10, mode="vector",
                           where={"importance": {"$gte": 0.9}})  # fmt: skip
        filtered.append((time.perf_counter() - began) * 1000)
    result["vector_filtered_10pct"] = {"p50_ms": round(statistics.median(filtered), 2)}
    return result


FACTS = [
    ("My dentist is Dr. Okafor on Elm Street.", "Who is my dentist?", "Okafor"),
    ("I'm allergic to penicillin.", "Which medicine am I allergic to?", "penicillin"),
    ("My daughter's name is Ilse and she is seven.", "What is my daughter called?", "Ilse"),
    ("Our wifi password is marmalade-42.", "What is the wifi password?", "marmalade-42"),
    ("I park my car in bay 318 at work.", "Where do I park at work?", "318"),
    ("My favourite band is The Lumineers.", "Which band do I like most?", "Lumineers"),
    ("I was born in Tromsø.", "Where was I born?", "Tromsø"),
    ("My manager is called Priya Raman.", "Who is my boss?", "Priya"),
    ("I take the 7:45 train to Utrecht every morning.", "Which train do I commute on?", "7:45"),
    ("My blood type is O negative.", "What is my blood type?", "O negative"),
    ("I prefer my coffee with oat milk, no sugar.", "How do I take my coffee?", "oat milk"),
    ("Our anniversary is on 14 September.", "When is our anniversary?", "14 September"),
    ("My cat Pixel needs her insulin at 8 pm.", "When does the cat get insulin?", "8 pm"),
    ("I'm learning Portuguese on Tuesdays.", "Which language am I studying?", "Portuguese"),
    ("The project deadline is March 3rd.", "When is the project due?", "March 3rd"),
    ("My shoe size is 44.", "What size shoes do I wear?", "44"),
    ("I never eat mushrooms, I hate them.", "Which food do I avoid?", "mushrooms"),
    ("My locker combination is 2719.", "What opens my locker?", "2719"),
    ("My brother Tomasz lives in Gdansk.", "Where does my brother live?", "Gdansk"),
    ("I'm vegetarian since 2015.", "What is my diet?", "vegetarian"),
]
FILLER = [
    "Can you help me rephrase this paragraph so it sounds a bit more formal and clear?",
    "Sure, here is a more formal version of the paragraph you shared with me earlier.",
    "What do you think about the weather this week, is it going to rain much?",
    "I cannot see live forecasts, but early spring weather is often changeable there.",
    "Let's go over the slides for the quarterly review one more time please.",
    "The third slide could use a simpler chart and fewer bullet points overall.",
    "Please summarise the article about urban gardening trends in two sentences.",
    "Urban gardening is growing as cities add rooftop plots and shared allotments.",
]


async def consolidation(embedder: Embedder, workdir: Path) -> dict[str, Any]:
    database = await Database.connect(f"sqlite:///{workdir / 'consolidation.db'}")
    await migrate(database, MEMORY_MIGRATIONS)
    store = SqliteVectorStore(
        workdir / "consolidation-vec.db", embedder_id=embedder.id, dimension=embedder.dimension
    )
    stm = ShortTermMemory(InProcessShortTermStore(), max_tokens=1024, ttl_s=None)
    ltm = LongTermMemory(store, embedder)
    summarizer = ExtractiveSummarizer()
    consolidator = Consolidator(
        database, stm, ltm, summarizer=summarizer, policy=ConsolidationPolicy()
    )
    await stm.add(TENANT, "conv", "system", "You are a helpful personal assistant.")
    pick = random.Random(3)
    reports = []
    fact_turns = {2 * i: fact for i, (fact, _, _) in enumerate(FACTS)}
    for turn in range(200):
        role = "user" if turn % 2 == 0 else "assistant"
        content = fact_turns.get(turn) or (
            pick.choice(FILLER[::2]) if role == "user" else pick.choice(FILLER[1::2])
        )
        await stm.add(TENANT, "conv", role, content)
        reports += await consolidator.consolidate(TENANT, "conv", "assistant")
    consolidated = sum(r.num_turns for r in reports)
    found = 0
    for _, question, answer in FACTS:
        recalled = await ltm.recall(TENANT, "assistant", question, k=5)
        found += any(answer.lower() in r.memory.text.lower() for r in recalled)
    await store.close()
    await database.close()
    return {
        "turns": 200, "facts": len(FACTS), "facts_recalled_top5": found,
        "recall": round(found / len(FACTS), 3), "batches": len(reports),
        "turns_consolidated": consolidated, "memories": sum(r.num_memories for r in reports),
        "summary_calls_per_turn": round(sum(r.summary_calls for r in reports) / consolidated, 4),
        "summary_input_tokens_per_turn": round(sum(r.input_tokens for r in reports) / consolidated, 1),
        "summary_output_tokens_per_turn": round(sum(r.output_tokens for r in reports) / consolidated, 1),
        "summarizer": "extractive (no LLM)",
    }  # fmt: skip


async def main(args: argparse.Namespace) -> dict[str, Any]:
    embedder = MiniLMEmbedder()
    results: dict[str, Any] = {"embedder": embedder.id, "cpus": os.cpu_count(),
                               "load_avg_at_start": os.getloadavg()[0]}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="roost-bench-memory-") as tmp:
        work = Path(tmp)
        if "retrieval" in args.only:
            results["retrieval"] = await retrieval(embedder, work)
        if "consolidation" in args.only:
            results["consolidation"] = await consolidation(embedder, work)
        if "latency" in args.only:
            results["latency"] = {"sqlite": [], "postgres": []}
            for size in args.sizes:
                store = SqliteVectorStore(
                    work / f"latency-{size}.db", embedder_id="bench-random-384", dimension=384
                )
                results["latency"]["sqlite"].append(await latency(store, size))
                await store.close()
            if args.pg:
                from tests.support.pgvector import PgvectorServer

                server = PgvectorServer.start()
                try:
                    for size in args.sizes:
                        database = await Database.connect(server.create_database())
                        store = await PgVectorStore.open(
                            database, embedder_id="bench-random-384", dimension=384
                        )
                        results["latency"]["postgres"].append(await latency(store, size))
                        await database.close()
                finally:
                    server.stop()
    return results


def print_table(results: dict[str, Any]) -> None:
    if "retrieval" in results:
        r = results["retrieval"]
        print(
            f"\nretrieval: {r['num_docs']} docs, {r['num_queries']} queries ({results['embedder']})"
        )
        print(f"{'mode':<8} {'recall@5':>9} {'MRR@10':>8}   by kind (recall@5)")
        for mode, row in r["modes"].items():
            kinds = "  ".join(f"{k} {v['recall@5']:.3f}" for k, v in row["by_kind"].items())
            print(f"{mode:<8} {row['recall@5']:>9.3f} {row['mrr@10']:>8.3f}   {kinds}")
        ing = r["ingestion"]
        print(
            f"ingestion: {ing['chunks']} chunks in {ing['seconds']} s = {ing['chunks_per_s']} chunks/s"
        )
    for backend, rows in results.get("latency", {}).items():
        for row in rows:
            cells = "  ".join(
                f"{m} p50 {row[m]['p50_ms']} / p95 {row[m]['p95_ms']} ms"
                for m in ("vector", "keyword", "hybrid")
            )
            print(
                f"latency {backend} n={row['size']}: {cells}; inserts {row['insert_items_per_s']}/s"
            )
    if "consolidation" in results:
        c = results["consolidation"]
        print(f"consolidation: {c['facts_recalled_top5']}/{c['facts']} planted facts in top 5 after"
              f" {c['turns_consolidated']} of {c['turns']} turns consolidated in {c['batches']} batches;"
              f" {c['summary_calls_per_turn']} summarizer calls and {c['summary_input_tokens_per_turn']}"
              f"+{c['summary_output_tokens_per_turn']} tokens per consolidated turn")  # fmt: skip


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--pg", action="store_true", help="also measure PostgreSQL + pgvector")
    parser.add_argument("--only", nargs="+", default=["retrieval", "consolidation", "latency"],
                        choices=["retrieval", "consolidation", "latency"])  # fmt: skip
    parser.add_argument("--out", type=Path, default=RESULTS / "memory.json")
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(outcome, indent=2) + "\n")
    print_table(outcome)
