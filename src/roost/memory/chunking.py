"""Token-aware chunking with overlap that keeps exact character offsets for citations.

Text is first cut into *segments* at natural boundaries (Markdown headings, blank lines,
then sentences, then words for run-on text); code is cut into syntax units (Python
through ``ast``: top-level functions and classes, methods of large classes; other
languages at top-level declarations and blank lines). Segments are then packed greedily
into chunks of at most ``max_tokens``, each chunk starting with the last
``overlap_tokens`` worth of segments of the one before, so a fact split across a
boundary is whole in at least one chunk.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
from collections.abc import Callable
from dataclasses import dataclass

from roost.memory.short_term import approximate_tokens

TokenCounter = Callable[[str], int]
_HEADING = re.compile(r"^#{1,6} ", re.MULTILINE)
_BLANK = re.compile(r"\n[ \t]*\n")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+")
_DECLARATION = re.compile(
    r"^(?:export\s+)?(?:pub(?:\(crate\))?\s+)?(?:async\s+)?(?:def|class|function|func|fn|impl|struct|"
    r"enum|trait|interface|type|const|let|var|public|private|protected|static|module|package)\b",
    re.MULTILINE,
)


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    text: str
    start: int  # character offsets into the extracted text
    end: int
    tokens: int


@dataclass(frozen=True, slots=True)
class ChunkingPolicy:
    max_tokens: int = 200
    overlap_tokens: int = 32

    def __post_init__(self) -> None:
        if self.max_tokens < 8 or not 0 <= self.overlap_tokens < self.max_tokens // 2:
            raise ValueError("need max_tokens >= 8 and 0 <= overlap_tokens < max_tokens / 2")


def chunk_text(
    text: str,
    *,
    policy: ChunkingPolicy | None = None,
    count_tokens: TokenCounter = approximate_tokens,
    language: str | None = None,
) -> list[Chunk]:
    """Chunks of ``text`` (code when ``language`` is given) within the token budget."""
    policy = policy or ChunkingPolicy()
    if not text.strip():
        return []
    spans = _code_spans(text, language) if language else _prose_spans(text)
    segments: list[tuple[int, int, int]] = []  # start, end, tokens
    for start, end in spans:
        segments += _fit(text, start, end, policy.max_tokens, count_tokens)
    return _pack(text, segments, policy, count_tokens)


def line_of(text: str, offset: int, newlines: list[int] | None = None) -> int:
    """1-based line number of a character offset."""
    if newlines is None:
        newlines = [m.start() for m in re.finditer("\n", text)]
    return bisect.bisect_right(newlines, offset - 1) + 1


def _prose_spans(text: str) -> list[tuple[int, int]]:
    cuts = {0, len(text)}
    cuts.update(m.start() for m in _HEADING.finditer(text))
    cuts.update(m.end() for m in _BLANK.finditer(text))
    return _trimmed(text, sorted(cuts))


def _code_spans(text: str, language: str) -> list[tuple[int, int]]:
    cuts = {0, len(text)}
    if language == "python":
        try:
            tree = ast.parse(text)
        except SyntaxError:
            tree = None
        if tree is not None:
            line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
            for node in tree.body:
                first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
                cuts.add(line_starts[first - 1])
                if isinstance(node, ast.ClassDef):  # big classes split at their methods
                    for child in node.body:
                        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                            lines = [child.lineno] + [d.lineno for d in child.decorator_list]
                            cuts.add(line_starts[min(lines) - 1])
            return _trimmed(text, sorted(cuts))
    cuts.update(m.start() for m in _DECLARATION.finditer(text))
    cuts.update(m.end() for m in _BLANK.finditer(text))
    return _trimmed(text, sorted(cuts))


def _trimmed(text: str, cuts: list[int]) -> list[tuple[int, int]]:
    spans = []
    for start, end in itertools.pairwise(cuts):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        if start < end:
            spans.append((start, end))
    return spans


_SPLITTERS = (_SENTENCE_END, re.compile(r"\n"), re.compile(r"\s+"))


def _fit(
    text: str, start: int, end: int, max_tokens: int, count: TokenCounter, level: int = 0
) -> list[tuple[int, int, int]]:
    """Split one span until each piece fits: at sentences, then lines, then words."""
    tokens = count(text[start:end])
    if tokens <= max_tokens:
        return [(start, end, tokens)]
    bounds: list[int] = []
    while level < len(_SPLITTERS) and not bounds:
        bounds = [m.end() for m in _SPLITTERS[level].finditer(text, start, end) if m.end() < end]
        level += 1
    if not bounds:  # one enormous word: cut by characters
        step = max(1, (end - start) * max_tokens // (tokens + 1))
        bounds = list(range(start + step, end, step))
        level = len(_SPLITTERS)
    out: list[tuple[int, int, int]] = []
    current: tuple[int, int] | None = None
    for s, e in zip([start, *bounds], [*bounds, end], strict=True):
        if current is not None and count(text[current[0] : e]) <= max_tokens:
            current = (current[0], e)
            continue
        if current is not None:
            out.append((*current, count(text[current[0] : current[1]])))
            current = None
        if count(text[s:e]) > max_tokens and level < len(_SPLITTERS) + 1 and e - s < end - start:
            out += _fit(text, s, e, max_tokens, count, level)
        else:
            current = (s, e)
    if current is not None:
        out.append((*current, count(text[current[0] : current[1]])))
    trimmed = []
    for s, e, t in out:
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if s < e:
            trimmed.append((s, e, t))
    return trimmed


def _tail(
    text: str, segment: tuple[int, int, int], max_tokens: int, count: TokenCounter
) -> tuple[int, int, int] | None:
    """The longest run of whole words at the end of a segment within ``max_tokens``."""
    start, end, _ = segment
    best: tuple[int, int, int] | None = None
    for match in reversed(list(re.finditer(r"\s+", text[start:end]))):
        tokens = count(text[start + match.end() : end])
        if tokens > max_tokens:
            break
        best = (start + match.end(), end, tokens)
    return best


def _pack(
    text: str, segments: list[tuple[int, int, int]], policy: ChunkingPolicy, count: TokenCounter
) -> list[Chunk]:
    chunks: list[Chunk] = []
    current: list[tuple[int, int, int]] = []
    used = 0
    for segment in segments:
        if current and used + segment[2] > policy.max_tokens:
            chunks.append(_chunk(text, len(chunks), current))
            carried: list[tuple[int, int, int]] = []
            carried_tokens = 0
            for previous in reversed(current):
                if carried_tokens + previous[2] > policy.overlap_tokens:
                    break
                carried.insert(0, previous)
                carried_tokens += previous[2]
            if not carried and policy.overlap_tokens:
                tail = _tail(text, current[-1], policy.overlap_tokens, count)
                if tail is not None:
                    carried, carried_tokens = [tail], tail[2]
            if carried_tokens + segment[2] > policy.max_tokens:
                carried, carried_tokens = [], 0
            current, used = carried, carried_tokens
        current.append(segment)
        used += segment[2]
    if current:
        chunks.append(_chunk(text, len(chunks), current))
    return chunks


def _chunk(text: str, index: int, segments: list[tuple[int, int, int]]) -> Chunk:
    start, end = segments[0][0], segments[-1][1]
    return Chunk(index, text[start:end], start, end, sum(s[2] for s in segments))
