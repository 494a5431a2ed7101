"""Text extraction for the knowledge base: plain text, Markdown, HTML, PDF and source code.

Every extractor returns the text that gets chunked plus what a citation needs: a title,
and for PDFs the offset where each page starts, so a chunk can say which page it is on.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from roost.errors import InvalidRequest

TEXT_SUFFIXES = {".txt": "text", ".text": "text", ".rst": "text", ".md": "markdown",
                 ".markdown": "markdown", ".html": "html", ".htm": "html", ".pdf": "pdf"}  # fmt: skip
CODE_SUFFIXES = {
    ".py": "python", ".js": "javascript", ".jsx": "javascript", ".ts": "typescript",
    ".tsx": "typescript", ".go": "go", ".rs": "rust", ".java": "java", ".kt": "kotlin",
    ".c": "c", ".h": "c", ".cc": "cpp", ".cpp": "cpp", ".hpp": "cpp", ".cs": "csharp",
    ".rb": "ruby", ".php": "php", ".swift": "swift", ".sh": "shell", ".sql": "sql",
    ".toml": "toml", ".yaml": "yaml", ".yml": "yaml",
}  # fmt: skip
MAX_FILE_BYTES = 20 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Extracted:
    text: str
    kind: str  # text, markdown, html, pdf, or "code"
    title: str
    language: str | None = None  # for code
    page_starts: list[int] = field(default_factory=list)  # PDFs: offset of each page
    metadata: dict[str, Any] = field(default_factory=dict)


def kind_of(path: Path) -> tuple[str, str | None] | None:
    """(kind, language) for a file the knowledge base can read, else None."""
    suffix = path.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        return TEXT_SUFFIXES[suffix], None
    if suffix in CODE_SUFFIXES:
        return "code", CODE_SUFFIXES[suffix]
    return None


def extract_file(path: Path, data: bytes) -> Extracted:
    """Extract a file's text; raises InvalidRequest for files it cannot read."""
    known = kind_of(path)
    if known is None:
        raise InvalidRequest(f"{path.name}: unsupported file type {path.suffix or '(none)'}")
    kind, language = known
    if kind == "pdf":
        return extract_pdf(data, title=path.stem)
    text = decode(data, path.name)
    if kind == "html":
        return extract_html(text, default_title=path.stem)
    if kind == "markdown":
        return extract_markdown(text, default_title=path.stem)
    return Extracted(text, kind, path.name if kind == "code" else path.stem, language)


def decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:8192]:
        raise InvalidRequest(f"{name}: looks binary, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def extract_markdown(text: str, *, default_title: str = "") -> Extracted:
    title = next(
        (line.lstrip("#").strip() for line in text.splitlines() if line.startswith("# ")),
        default_title,
    )
    return Extracted(text, "markdown", title)


class _HtmlText(HTMLParser):
    _SKIP = frozenset({"script", "style", "noscript", "template", "svg", "head"})
    _BLOCK = frozenset({"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6",
                        "tr", "table", "section", "article", "pre", "blockquote", "header",
                        "footer", "hr", "dt", "dd"})  # fmt: skip

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.title = ""
        self._skip = 0
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n\n" if tag.startswith("h") or tag == "p" else "\n")
            if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
                self.parts.append("#" * int(tag[1]) + " ")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        elif not self._skip:
            self.parts.append(data)


def extract_html(html: str, *, default_title: str = "") -> Extracted:
    """Visible text with headings kept as Markdown ``#`` lines; scripts and styles dropped."""
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return Extracted(text.strip(), "html", parser.title.strip() or default_title)


def extract_pdf(data: bytes, *, title: str = "") -> Extracted:
    """Text of every page, pages separated by blank lines, with each page's start offset."""
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # malformed-but-readable PDFs are common
    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or title
    except (PdfReadError, ValueError, KeyError) as exc:
        raise InvalidRequest(f"{title or 'pdf'}: cannot read PDF: {exc}") from exc
    starts: list[int] = []
    text = ""
    for page in pages:
        if text:
            text += "\n\n"
        starts.append(len(text))
        text += page
    return Extracted(
        text, "pdf", str(meta_title), page_starts=starts, metadata={"pages": len(pages)}
    )
