"""Offline PII detectors: compiled patterns, each confirmed by a validator.

A pattern finds candidates cheaply; the validator keeps only those whose structure holds
(Luhn for cards, mod-97 for IBANs, octet ranges for IP addresses, the issuing rules of
US SSNs and UK NINOs, ISO 7064 for German tax ids). Checksums are what keep precision up:
a 16-digit order number is not a card unless its Luhn digit says so.

No model, no download: :func:`find_pii` on a 4 KB text takes well under a millisecond
(benchmarks/guardrails.py measures it).
"""

from __future__ import annotations

import bisect
import ipaddress
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

KINDS = (
    "email",
    "iban",
    "credit_card",
    "us_ssn",
    "uk_nino",
    "de_tax_id",
    "ipv6",
    "ipv4",
    "phone",
)


@dataclass(frozen=True, slots=True)
class PiiMatch:
    kind: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Detector:
    kind: str
    scan: Callable[[str], Iterable[tuple[int, int]]]
    # A character that must be in the text at all for the pattern to have a chance:
    # skipping the scan is the cheapest scan.
    needs: str | None = None


_NON_DIGITS = re.compile(r"[^0-9]")


def _digits(text: str) -> str:
    return _NON_DIGITS.sub("", text)


def luhn_ok(number: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(number)):
        d = ord(ch) - 48
        if i % 2:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


_CARD_PREFIXES = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[068]|35|6(?:011|5|4[4-9]|22)")


def _card(match: re.Match[str], _text: str) -> bool:
    number = _digits(match.group(0))
    return 13 <= len(number) <= 19 and bool(_CARD_PREFIXES.match(number)) and luhn_ok(number)


# Lengths by country (ISO 13616 registry, the countries users meet most); others: 15-34.
_IBAN_LENGTHS = {
    "AT": 20, "BE": 16, "CH": 21, "CZ": 24, "DE": 22, "DK": 18, "ES": 24, "FI": 18,
    "FR": 27, "GB": 22, "GR": 27, "HU": 28, "IE": 22, "IT": 27, "LU": 20, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SK": 24,
}  # fmt: skip


_IBAN_LETTERS = str.maketrans({chr(65 + i): str(10 + i) for i in range(26)})


def iban_ok(iban: str) -> bool:
    iban = iban.replace(" ", "").upper()
    expected = _IBAN_LENGTHS.get(iban[:2])
    if (expected is not None and len(iban) != expected) or not 15 <= len(iban) <= 34:
        return False
    rearranged = iban[4:] + iban[:4]
    if not rearranged.isalnum() or not rearranged.isascii():
        return False
    digits = rearranged.translate(_IBAN_LETTERS)
    return int(digits) % 97 == 1


def _iban(match: re.Match[str], _text: str) -> bool:
    return iban_ok(match.group(0))


def _ipv4(match: re.Match[str], _text: str) -> bool:
    try:
        ipaddress.IPv4Address(match.group(0))
    except ValueError:
        return False
    return True


def _ipv6(match: re.Match[str], _text: str) -> bool:
    candidate = match.group(0)
    if candidate.count(":") < 2:
        return False
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


def _ssn(match: re.Match[str], _text: str) -> bool:
    # SSA rules: area 000, 666 and 900-999 are never issued, nor group 00 or serial 0000;
    # 078-05-1120 is the famous wallet-card sample number.
    area, group, serial = match.group("area"), match.group("group"), match.group("serial")
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return f"{area}{group}{serial}" not in ("078051120", "219099999")


_NINO_BAD_PREFIXES = frozenset({"BG", "GB", "NK", "KN", "TN", "NT", "ZZ"})


def _nino(match: re.Match[str], _text: str) -> bool:
    return match.group(0)[:2] not in _NINO_BAD_PREFIXES


def de_tax_id_ok(number: str) -> bool:
    """Steueridentifikationsnummer: 11 digits, no leading 0, in the first ten one digit
    occurs twice or three times and the rest at most once, ISO 7064 MOD 11,10 check."""
    if len(number) != 11 or number[0] == "0":
        return False
    counts = [number[:10].count(d) for d in set(number[:10])]
    if sorted(c for c in counts if c > 1) not in ([2], [3]):
        return False
    product = 10
    for ch in number[:10]:
        total = (int(ch) + product) % 10 or 10
        product = (total * 2) % 11
    check = (11 - product) % 10
    return check == int(number[10])


_DE_TAX_CONTEXT = re.compile(r"steuer|idnr|identifikationsnummer|tax", re.IGNORECASE)


def _de_tax_id(match: re.Match[str], text: str) -> bool:
    # Eleven digits with a valid check digit are one in ten of random numbers: only with
    # a word that names a tax id nearby is it one.
    before = text[max(0, match.start() - 48) : match.start()]
    return bool(_DE_TAX_CONTEXT.search(before)) and de_tax_id_ok(_digits(match.group(0)))


_DATE_LIKE = re.compile(r"(?:19|20)\d\d[-./](?:0?[1-9]|1[0-2])[-./]\d\d?")


_PHONE_SHAPE = re.compile(
    r"(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{1,4}(?:[ .-]?\d{1,4}){1,5}"
)


def _phone(match: re.Match[str], _text: str) -> bool:
    raw = match.group(0)
    if not _PHONE_SHAPE.fullmatch(raw) or _DATE_LIKE.fullmatch(raw):
        return False
    digits = _digits(raw)
    if raw.startswith("+"):
        return 8 <= len(digits) <= 15
    if raw.startswith("0"):  # national format with a trunk prefix (UK, DE, FR, ...)
        return 10 <= len(digits) <= 11 and any(c in raw for c in " -./()")
    # North American: area and exchange codes start 2-9.
    return len(digits) == 10 and digits[0] in "23456789" and digits[3] in "23456789"


_LOCAL_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")
_DOMAIN = re.compile(r"[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}(?![\w-])")
_HEX_COLON = frozenset("0123456789abcdefABCDEF:")
_IPV6_TAIL = frozenset("0123456789abcdefABCDEF:.")


def _scan_emails(text: str) -> Iterable[tuple[int, int]]:
    """Around each ``@``: the local part back to its start, the domain forward."""
    at = text.find("@")
    while at != -1:
        start = at
        while start > 0 and at - start < 64 and text[start - 1] in _LOCAL_PART:
            start -= 1
        domain = _DOMAIN.match(text, at + 1)
        if start < at and domain is not None and not (start and text[start - 1].isalnum()):
            yield start, domain.end()
            at = text.find("@", domain.end())
        else:
            at = text.find("@", at + 1)


# Two colons with at most four hex digits between: where an IPv6 address may be. A
# pattern that starts with a literal lets the regex engine jump between colons.
_IPV6_SEED = re.compile(r":[0-9A-Fa-f]{0,4}:")


def _scan_ipv6(text: str) -> Iterable[tuple[int, int]]:
    """Around each seed: the run of hex digits, colons (and a dotted IPv4 tail)."""
    end = 0
    for seed in _IPV6_SEED.finditer(text):
        if seed.start() < end:
            continue  # inside the candidate just examined
        start, end = seed.start(), seed.end()
        while start > 0 and text[start - 1] in _HEX_COLON:
            start -= 1
        while end < len(text) and text[end] in _IPV6_TAIL:
            end += 1
        while end > start and text[end - 1] in ".:" and not text[start:end].endswith("::"):
            end -= 1  # a sentence's full stop or colon is not part of the address
        candidate = text[start:end]
        clear = not (start and (text[start - 1].isalnum() or text[start - 1] == "_")) and not (
            end < len(text) and (text[end].isalnum() or text[end] == "_")
        )
        colons = candidate.count(":")
        # Only "::" shortens an address below seven colons: "12:30:45" is a time.
        if clear and (
            colons == 7 or (colons >= 2 and "::" in candidate) or (colons == 6 and "." in candidate)
        ):
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            yield start, end


@dataclass(frozen=True, slots=True)
class _Pattern:
    """Candidates of a compiled pattern, kept when nothing in ``not_after`` comes just
    before them (checked here, not by a lookbehind: a pattern that starts with a plain
    character class lets the regex engine skip ahead fast) and ``valid`` says so."""

    pattern: re.Pattern[str]
    valid: Callable[[re.Match[str], str], bool]
    not_after: str = ""
    word_boundary: bool = False

    def __call__(self, text: str) -> Iterable[tuple[int, int]]:
        for m in self.pattern.finditer(text):
            start = m.start()
            if start:
                before = text[start - 1]
                if before in self.not_after or (
                    self.word_boundary and (before.isalnum() or before == "_")
                ):
                    continue
            if self.valid(m, text):
                yield start, m.end()


def _always(_m: re.Match[str], _text: str) -> bool:
    return True


Scanner = Callable[[str], Iterable[tuple[int, int]]]
_DETECTORS: tuple[_Detector, ...] = (
    _Detector("email", _scan_emails, needs="@"),
    _Detector(
        "iban",
        _Pattern(
            re.compile(r"[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b"),
            _iban,
            word_boundary=True,
        ),
    ),
    _Detector(
        "credit_card",
        _Pattern(re.compile(r"[0-9](?:[ -]?\d){12,18}(?![\d-])"), _card, "-", word_boundary=True),
    ),
    _Detector(
        "us_ssn",
        _Pattern(
            re.compile(r"(?P<area>[0-9]\d{2})([- ])(?P<group>\d{2})\2(?P<serial>\d{4})(?![\d-])"),
            _ssn,
            "-",
            word_boundary=True,
        ),
    ),
    _Detector(
        "uk_nino",
        _Pattern(
            re.compile(r"[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D]\b"),
            _nino,
            word_boundary=True,
        ),
    ),
    _Detector(
        "de_tax_id",
        _Pattern(re.compile(r"[1-9]\d ?\d{3} ?\d{3} ?\d{3}(?!\d)"), _de_tax_id, word_boundary=True),
    ),
    _Detector("ipv6", _scan_ipv6, needs=":"),
    _Detector(
        "ipv4",
        _Pattern(
            re.compile(r"[0-9]{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)"),
            _ipv4,
            ".",
            word_boundary=True,
        ),
        needs=".",
    ),
    _Detector(
        "phone",
        _Pattern(
            # a dot only between digits: "... 90 88. 8 items" is no one number
            re.compile(r"[+(0-9](?:[0-9() -]|\.(?=[0-9])){6,22}[0-9](?![\w@-]|\.\w)"),
            _phone,
            "@.+-",
            word_boundary=True,
        ),
    ),
)


def find_pii(text: str, kinds: Iterable[str] | None = None) -> list[PiiMatch]:
    """Every PII span in ``text``, non-overlapping, in order. Where two detectors claim
    overlapping text the earlier one in :data:`KINDS` wins (an IBAN is not a phone)."""
    wanted = None if kinds is None else frozenset(kinds)
    found: list[tuple[int, PiiMatch]] = []
    for rank, detector in enumerate(_DETECTORS):
        if wanted is not None and detector.kind not in wanted:
            continue
        if detector.needs is not None and detector.needs not in text:
            continue
        for start, end in detector.scan(text):
            found.append((rank, PiiMatch(detector.kind, start, end)))
    if not found:
        return []
    found.sort(key=lambda item: (item[0], item[1].start))
    # Kept spans are disjoint, so sorted by start they are sorted by end too: a candidate
    # overlaps one only if it overlaps a neighbour of its insertion point.
    starts: list[int] = []
    kept: list[PiiMatch] = []
    for _, match in found:
        at = bisect.bisect_left(starts, match.start)
        if at > 0 and kept[at - 1].end > match.start:
            continue
        if at < len(kept) and kept[at].start < match.end:
            continue
        starts.insert(at, match.start)
        kept.insert(at, match)
    return kept


def mask_text(text: str, matches: Sequence[PiiMatch]) -> str:
    """``text`` with each match replaced by its kind in brackets, e.g. ``[EMAIL]``."""
    if not matches:
        return text
    pieces: list[str] = []
    at = 0
    for m in matches:
        pieces += [text[at : m.start], f"[{m.kind.upper()}]"]
        at = m.end
    pieces.append(text[at:])
    return "".join(pieces)


def mask_pii(text: str, kinds: Iterable[str] | None = None) -> tuple[str, list[PiiMatch]]:
    matches = find_pii(text, kinds)
    return mask_text(text, matches), matches
