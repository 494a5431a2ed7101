"""Code search kept in the knowledge base: the workspace's symbol chunks in a per-workspace
collection embedded by all-MiniLM-L6-v2, re-synced from git changes, fused with keyword
search by reciprocal rank; tenant-scoped."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from roost.coding.code_knowledge import CodeKnowledge, collection_name
from roost.platform.kernel import Roost

pytestmark = pytest.mark.slow  # loads all-MiniLM-L6-v2 (a few seconds)

FILES = {
    "geometry.py": (
        "def area_of_circle(r):\n    return 3.14159 * r * r\n\n\n"
        "def hypotenuse(a, b):\n    return (a * a + b * b) ** 0.5\n"
    ),
    "text_utils.py": (
        "def reverse_words(s):\n    return ' '.join(reversed(s.split()))\n\n\n"
        "def count_vowels(s):\n    return sum(ch in 'aeiou' for ch in s.lower())\n"
    ),
    "net.py": (
        "import json\nimport urllib.request\n\n\n"
        "def fetch_json(url):\n    with urllib.request.urlopen(url) as reply:\n"
        "        return json.load(reply)\n"
    ),
}


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e.org",
                    *args], check=True, capture_output=True)  # fmt: skip


def make_repo(root: Path) -> Path:
    root.mkdir(parents=True)
    for name, text in FILES.items():
        (root / name).write_text(text)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "start")
    return root


async def test_a_query_without_shared_words_finds_the_function_by_meaning(
    kernel: Roost, tmp_path: Path
) -> None:
    assert kernel.memory is not None
    repo = make_repo(tmp_path / "repo")
    code = CodeKnowledge(kernel.memory.knowledge, "tenant-a", repo, "coder")
    report = await code.sync()
    assert report.full and sorted(report.files) == sorted(FILES)
    query = "download web page then decode its contents"
    hits = await code.search(query, k=3)
    assert hits[0]["symbol"] == "fetch_json", hits
    assert hits[0]["ranks"] == {"semantic": 1}  # no word in common: found by meaning alone
    # A keyword query still ranks by words, and both rankings fuse.
    both = await code.search("reverse the order of words in a sentence", k=3)
    assert both[0]["symbol"] == "reverse_words", both
    assert set(both[0]["ranks"]) == {"keyword", "semantic"}


async def test_a_changed_file_is_reindexed_alone_from_git(kernel: Roost, tmp_path: Path) -> None:
    assert kernel.memory is not None
    repo = make_repo(tmp_path / "repo")
    code = CodeKnowledge(kernel.memory.knowledge, "tenant-a", repo, "coder")
    first = await code.sync()
    assert first.full and first.added == 5  # five definitions
    again = await code.sync()
    assert not again.full and again.files == [] and again.added == again.updated == 0

    (repo / "text_utils.py").write_text(
        FILES["text_utils.py"].replace("'aeiou'", "'aeiouy'")  # count_vowels changes
    )
    (repo / "notes.md").write_text("Shipping notes: a parcel travels by boat.\n")  # untracked
    changed = await code.sync()
    assert sorted(changed.files) == ["notes.md", "text_utils.py"]
    assert changed.updated == 1 and changed.added == 1  # count_vowels, and the notes file
    assert changed.unchanged == 1  # reverse_words: read again, not embedded again
    hits = await code.search("cargo ship delivery", k=1)
    assert hits[0]["path"] == "notes.md"

    git(repo, "rm", "-q", "net.py")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "drop net")
    gone = await code.sync()
    assert "net.py" in gone.files and gone.removed == 1
    assert all(
        h["path"] != "net.py"
        for h in await code.search("download web page then decode its contents", k=8)
    )


async def test_the_collection_is_the_tenants_own(kernel: Roost, tmp_path: Path) -> None:
    assert kernel.memory is not None
    kb = kernel.memory.knowledge
    await CodeKnowledge(kb, "tenant-a", make_repo(tmp_path / "a"), "coder").sync()
    empty = tmp_path / "b"
    empty.mkdir()
    git(empty, "init", "-q")
    other = CodeKnowledge(kb, "tenant-b", empty, "coder")
    await other.sync()
    assert await other.search("download a web page and parse it", k=8) == []
    names = [c.name for c in await kb.list_collections("tenant-b")]
    assert names == [collection_name("coder")]
    hits = await kb.search("tenant-b", collection_name("coder"), "fetch json url", k=8)
    assert all(h.uri == "roost:code-index-state" for h in hits)
