"""Generate the memory retrieval set: 2,000 documents and 350 queries with known answers.

Four domains (companies, people, incidents, recipes) of templated documents. Every slot
value comes with a paraphrase that shares no content word with it, so queries come in
three kinds:

- ``paraphrase``: describes a document only through paraphrases of its slot values
  (the combination is unique), which embeddings should handle and keywords should not;
- ``keyword``: only a document's reference code (``QX-48213``), which keywords find
  and embeddings mostly cannot;
- ``mixed``: the document's made-up name plus one paraphrased attribute.

Deterministic (seeded): ``python benchmarks/data/memory/generate.py`` rewrites
``docs.jsonl`` and ``queries.jsonl`` beside this file identically.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 20261122
PER_DOMAIN = 500

INDUSTRIES = {
    "shipping": "maritime freight", "bakery": "bread and pastry", "insurance": "risk cover",
    "solar": "photovoltaic power", "furniture": "tables and chairs", "robotics": "automated machines",
    "brewing": "beer making", "cybersecurity": "digital defence", "textile": "fabric weaving",
    "pharmaceutical": "medicine manufacturing", "gaming": "video game", "mining": "ore extraction",
    "aviation": "aircraft", "dairy": "milk and cheese", "publishing": "book printing",
    "telecom": "mobile network", "cosmetics": "makeup and skincare", "logistics": "parcel delivery",
    "semiconductor": "microchip", "winery": "grape fermentation",
}  # fmt: skip
CITIES = {
    "Lisbon": "the Portuguese capital", "Oslo": "Norway's largest town", "Nairobi": "Kenya's capital",
    "Osaka": "a big Japanese port metropolis", "Lima": "Peru's capital", "Krakow": "a historic Polish city",
    "Montreal": "a French-speaking Canadian metropolis", "Seville": "an Andalusian city",
    "Hanoi": "Vietnam's capital", "Melbourne": "an Australian coastal metropolis",
    "Reykjavik": "Iceland's capital", "Cairo": "Egypt's capital", "Zurich": "a Swiss banking hub",
    "Glasgow": "a Scottish town", "Bogota": "Colombia's capital", "Istanbul": "the city on the Bosphorus",
    "Tallinn": "Estonia's capital", "Dublin": "Ireland's capital", "Seoul": "Korea's capital",
    "Marrakesh": "a Moroccan desert-edge town",
}  # fmt: skip
TRAITS = {
    "low prices": "being cheap", "fast service": "quick turnaround", "green practices": "eco-friendly habits",
    "luxury design": "upscale styling", "strong unions": "organised labour", "remote work": "working from home",
    "record profits": "huge earnings", "a recent scandal": "a controversy lately",
    "open source tools": "freely licensed software", "family ownership": "being run by relatives",
}  # fmt: skip
ROLES = {
    "accountant": "bookkeeper", "nurse": "care worker in a clinic", "designer": "visual creative",
    "plumber": "pipe fitter", "teacher": "schoolroom instructor", "pilot": "aircraft captain",
    "chef": "kitchen cook", "lawyer": "attorney", "electrician": "wiring technician",
    "architect": "building planner", "firefighter": "blaze responder", "librarian": "book keeper at an archive",
    "veterinarian": "animal doctor", "journalist": "news reporter", "carpenter": "woodworker",
}  # fmt: skip
DEPTS = {
    "finance": "money matters", "research": "laboratory science", "sales": "selling",
    "support": "customer help", "legal": "contracts and compliance", "marketing": "advertising",
    "operations": "day-to-day running", "security": "protection",
}  # fmt: skip
HOBBIES = {
    "plays the violin": "performs string music", "collects stamps": "hoards postage labels",
    "runs marathons": "does long-distance racing", "grows tomatoes": "gardens red vegetables",
    "restores old cars": "fixes vintage automobiles", "paints watercolours": "makes aquarelle art",
    "climbs mountains": "scales peaks", "keeps bees": "raises honey insects",
    "builds model ships": "crafts miniature boats", "bakes sourdough": "makes fermented loaves",
    "sings in a choir": "performs vocal ensemble music", "writes poetry": "composes verses",
}  # fmt: skip
SERVICES = {
    "billing": "invoicing system", "login": "sign-in system", "search": "lookup engine",
    "checkout": "payment flow", "email": "mail delivery", "storage": "file keeping backend",
    "video": "streaming player", "notifications": "alerting pipeline", "reporting": "analytics dashboards",
    "inventory": "stock tracking",
}  # fmt: skip
CAUSES = {
    "an expired certificate": "a lapsed TLS credential", "a full disk": "running out of space",
    "a bad deploy": "a faulty release", "a memory leak": "RAM slowly being exhausted",
    "a DNS misconfiguration": "broken name resolution", "a database deadlock": "rows locking each other",
    "a traffic spike": "a sudden flood of visitors", "a power outage": "electricity cut",
    "a network partition": "a split between datacenters", "a clock skew": "servers disagreeing on time",
}  # fmt: skip
FIXES = {
    "rolling back": "reverting to the previous version", "adding capacity": "scaling out more servers",
    "restarting the workers": "rebooting the processes", "rotating the keys": "renewing credentials",
    "clearing the cache": "flushing stored copies", "patching the config": "editing settings",
}  # fmt: skip
CUISINES = {
    "Italian": "from the boot-shaped peninsula", "Mexican": "from south of the Rio Grande",
    "Thai": "from Bangkok's country", "Indian": "from the subcontinent", "Greek": "Hellenic",
    "Japanese": "from the land of the rising sun", "Ethiopian": "from the Horn of Africa",
    "French": "Parisian-style", "Korean": "from the peninsula of kimchi", "Peruvian": "Andean",
}  # fmt: skip
INGREDIENTS = {
    "lentils": "pulses", "salmon": "pink fish", "eggplant": "aubergine", "chickpeas": "garbanzo beans",
    "pork belly": "fatty swine cut", "spinach": "leafy greens", "shrimp": "prawns", "mushrooms": "fungi",
    "lamb": "young sheep meat", "tofu": "bean curd", "pumpkin": "orange squash", "duck": "waterfowl meat",
}  # fmt: skip
METHODS = {
    "slowly braised": "stewed for a long time", "deep fried": "cooked in hot oil",
    "grilled": "charred over flames", "steamed": "cooked in vapour", "baked": "cooked in the oven",
    "stir fried": "tossed in a wok",
}  # fmt: skip
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ra",
    "ve",
    "no",
    "sa",
    "tu",
    "be",
    "lin",
    "dor",
    "fen",
    "gal",
    "hux",
    "ior",
    "jum",
    "kel",
    "mor",
    "nav",
    "ost",
    "pel",
    "quin",
    "rus",
    "sel",
    "tor",
]


def _a(word: str) -> str:
    return "an" if word[0].lower() in "aeiou" else "a"


def _name(rng: random.Random, used: set[str]) -> str:
    while True:
        name = "".join(rng.choice(SYLLABLES) for _ in range(rng.choice((2, 3)))).capitalize()
        if name not in used and len(name) > 4:
            used.add(name)
            return name


def _code(rng: random.Random, used: set[str]) -> str:
    while True:
        code = f"{rng.choice('QXZKVWJ')}{rng.choice('QXZKVWJ')}-{rng.randint(10000, 99999)}"
        if code not in used:
            used.add(code)
            return code


def _unique_combos(rng: random.Random, *pools: dict[str, str]) -> list[tuple[str, ...]]:
    combos: set[tuple[str, ...]] = set()
    while len(combos) < PER_DOMAIN:
        combos.add(tuple(rng.choice(sorted(pool)) for pool in pools))
    ordered = sorted(combos)
    rng.shuffle(ordered)
    return ordered


def generate() -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    rng = random.Random(SEED)
    names: set[str] = set()
    codes: set[str] = set()
    docs: list[dict[str, object]] = []
    para: list[tuple[str, str]] = []  # (doc id, paraphrase query)
    mixed: list[tuple[str, str]] = []
    for industry, city, trait in _unique_combos(rng, INDUSTRIES, CITIES, TRAITS):
        name, code, year = _name(rng, names), _code(rng, codes), rng.randint(1950, 2022)
        doc_id = f"doc-{len(docs):05d}"
        docs.append({"id": doc_id, "domain": "company", "code": code, "text": (
            f"{name} is {_a(industry)} {industry} company founded in {year} and based in {city}. It is known for"
            f" {trait}. Internal reference {code}.")})  # fmt: skip
        para.append(
            (
                doc_id,
                f"Which {INDUSTRIES[industry]} business located in {CITIES[city]} is famous for {TRAITS[trait]}?",
            )
        )
        mixed.append((doc_id, f"Where is {name} located?"))
    for role, dept, hobby in _unique_combos(rng, ROLES, DEPTS, HOBBIES):
        name, code = _name(rng, names), _code(rng, codes)
        doc_id = f"doc-{len(docs):05d}"
        docs.append({"id": doc_id, "domain": "person", "code": code, "text": (
            f"{name} works as {_a(role)} {role} in the {dept} department and {hobby} on weekends."
            f" Badge number {code}.")})  # fmt: skip
        para.append(
            (doc_id, f"Who is the {ROLES[role]} working on {DEPTS[dept]} that {HOBBIES[hobby]}?")
        )
        mixed.append((doc_id, f"What does {name} do in their free time?"))
    for service, cause, fix in _unique_combos(rng, SERVICES, CAUSES, FIXES):
        name, code = _name(rng, names), _code(rng, codes)
        doc_id = f"doc-{len(docs):05d}"
        docs.append({"id": doc_id, "domain": "incident", "code": code, "text": (
            f"Incident {code} ({name}): the {service} service went down because of {cause}."
            f" The team resolved it by {fix}.")})  # fmt: skip
        para.append(
            (
                doc_id,
                f"Outage of the {SERVICES[service]} caused by {CAUSES[cause]}, solved through {FIXES[fix]}",
            )
        )
        mixed.append((doc_id, f"How was the {name} outage resolved?"))
    for cuisine, ingredient, method in _unique_combos(rng, CUISINES, INGREDIENTS, METHODS):
        name, code, minutes = _name(rng, names), _code(rng, codes), rng.choice((10, 20, 30, 45, 90))
        doc_id = f"doc-{len(docs):05d}"
        docs.append({"id": doc_id, "domain": "recipe", "code": code, "text": (
            f"{name} is {_a(cuisine)} {cuisine} dish of {ingredient}, {method} for {minutes} minutes."
            f" Recipe card {code}.")})  # fmt: skip
        para.append(
            (
                doc_id,
                f"a dish {CUISINES[cuisine]} with {INGREDIENTS[ingredient]}, {METHODS[method]}",
            )
        )
        mixed.append((doc_id, f"What is the main ingredient of {name}?"))
    queries: list[dict[str, object]] = []
    by_id = {d["id"]: d for d in docs}
    for doc_id, text in rng.sample(para, 150):
        queries.append({"kind": "paraphrase", "query": text, "relevant": [doc_id]})
    for doc in rng.sample(docs, 100):
        queries.append({"kind": "keyword", "query": f"{doc['code']}", "relevant": [doc["id"]]})
    for doc_id, text in rng.sample(mixed, 100):
        queries.append({"kind": "mixed", "query": text, "relevant": [doc_id]})
    for n, query in enumerate(queries):
        query["id"] = f"q-{n:04d}"
        assert all(r in by_id for r in query["relevant"])  # type: ignore[attr-defined]
    return docs, queries


def main() -> None:
    docs, queries = generate()
    for name, rows in (("docs.jsonl", docs), ("queries.jsonl", queries)):
        with (HERE / name).open("w") as out:
            for row in rows:
                out.write(json.dumps(row, sort_keys=True) + "\n")
    print(f"wrote {len(docs)} documents and {len(queries)} queries to {HERE}")


if __name__ == "__main__":
    main()
