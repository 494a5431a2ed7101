"""How much a quantization scheme changes what the model does with a round-tripped KV cache.

Two measures, both on the engine's own model and attention code (a private KV tensor laid
out like the engine's pool, so the engine's pool and worker are never touched):

- greedy agreement: each prompt but its last token is prefilled, the K/V is round-tripped
  through the scheme, and 32 greedy tokens are decoded from it (the last prompt token first,
  as a session cache restore does); they are compared with the same decode from exact K/V.
- perplexity: the first half of a fixed text is prefilled and round-tripped, the second half
  is scored against it, and compared with the exact cache's perplexity.

Use an engine in float32 so that differences come from the cache alone.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from roost.engine.attention import AttentionBatch
from roost.engine.engine import Engine
from roost.engine.model import LlamaModel
from roost.kvcache.quantize import Scheme, dequantize, quantize

RoundTrip = Callable[[torch.Tensor], torch.Tensor]  # K/V [L, T, 2, H, D] -> same shape

# Long enough (~200 tokens with a question) that int4 keys fill whole 64-token groups.
SYSTEM_PROMPT = (
    "You are Wren, the assistant of a small public library. You answer questions from "
    "visitors politely and briefly, in plain language, without jargon. When a question is "
    "about the library, you may mention that it opens at nine in the morning and closes at "
    "six in the evening, that the reading room is on the first floor, that children's books "
    "are in the east wing, and that visitors can borrow up to eight items for three weeks. "
    "When a question is about anything else, answer it as well as you can from general "
    "knowledge. If you do not know the answer, say so honestly and suggest where the visitor "
    "might look. Never invent titles, authors or dates. Keep every answer under one hundred "
    "words unless the visitor asks for more detail, and end with a short offer of further help."
)

QUESTIONS = (
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain photosynthesis in two sentences.",
    "List three uses of a paperclip.",
    "How do I reverse a list in Python?",
    "What causes the seasons on Earth?",
    "Give me a short recipe for pancakes.",
    "Why is the sky blue?",
    "Translate 'good morning' into Spanish and German.",
    "What is the difference between a virus and a bacterium?",
    "Suggest a name for a black cat.",
    "Summarise the plot of Romeo and Juliet.",
    "How many legs does a spider have?",
    "What is a prime number? Give examples.",
    "Describe a rainy day in a city.",
    "What are the benefits of regular exercise?",
    "Explain what an API is to a child.",
    "Write the first line of a mystery novel.",
    "What is the boiling point of water at sea level?",
    "Give two tips for learning a new language.",
)

REFERENCE_TEXT = (
    "The river rises in the hills above the town, where the snow lingers until late spring. "
    "For most of the year it is a quiet stream that children can cross on stepping stones, "
    "but in April the meltwater turns it brown and loud, and the old mill wheel, long since "
    "idle, spins again as if remembering its work. The town grew up around that mill. Farmers "
    "brought their grain down the valley road on carts, and the miller's family kept a ledger "
    "of every sack, every price and every debt, which still sits in the library beside the "
    "square. Reading it, one learns that the winter of 1847 was so hard that the river froze "
    "solid and the wheel stopped for six weeks; that a fire in 1862 destroyed the granary but "
    "spared the house; and that the last sack was ground in 1911, when a steam mill opened by "
    "the railway and the old one could no longer compete. Today the building is a museum. "
    "Visitors walk through the rooms where the stones turned, look at the ledger under glass, "
    "and stand on the bridge to watch the water. In the evening, when the museum closes, the "
    "keeper walks the length of the race to clear the leaves from the grate, a habit he "
    "learned from his grandfather, who learned it from his, although no grain has passed "
    "through the mill for more than a century. He says the river does not care whether "
    "anyone is watching, and that is why he likes it."
)


@dataclass(frozen=True, slots=True)
class QualityReport:
    """What one scheme changes, against the exact cache."""

    scheme: str
    num_continuations: int
    num_identical: int  # continuations whose every greedy token matches the exact one
    mean_matching_tokens: float  # tokens before the first difference, averaged
    perplexity_exact: float
    perplexity: float  # of the same text, scored against the round-tripped cache

    @property
    def identical_share(self) -> float:
        return self.num_identical / self.num_continuations

    @property
    def perplexity_change(self) -> float:
        """Relative change, e.g. 0.01 for a perplexity 1 % higher than with exact K/V."""
        return self.perplexity / self.perplexity_exact - 1


def chat_prompts(engine: Engine) -> list[list[int]]:
    """The 20 fixed questions after the system prompt, rendered with the chat template."""
    return [
        engine.apply_chat_template(
            [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": q}]
        )
        for q in QUESTIONS
    ]


def measure_schemes(
    engine: Engine,
    schemes: Sequence[Scheme],
    prompts: Sequence[list[int]],
    text_ids: list[int],
    *,
    num_tokens: int = 32,
) -> list[QualityReport]:
    """Greedy agreement on ``prompts`` and perplexity on ``text_ids``, one report per scheme."""

    def through(scheme: Scheme) -> RoundTrip:
        return lambda kv: dequantize(quantize(kv, scheme), kv.dtype)

    trips: dict[str, RoundTrip] = {scheme: through(scheme) for scheme in schemes}
    return compare_round_trips(engine, trips, prompts, text_ids, num_tokens=num_tokens)


def compare_round_trips(
    engine: Engine,
    round_trips: dict[str, RoundTrip],
    prompts: Sequence[list[int]],
    text_ids: list[int],
    *,
    num_tokens: int = 32,
) -> list[QualityReport]:
    """Like :func:`measure_schemes` for any K/V transformations (to compare candidates).

    The exact run and every transformation share one prefill and run as one batch.
    """
    model, dtype = engine.runner.model, engine.runner.dtype
    variants: list[RoundTrip | None] = [None, *round_trips.values()]
    exact, *changed = greedy_continuations(model, dtype, prompts, variants, num_tokens)
    perplexity_exact, *changed_perplexities = perplexities(model, dtype, text_ids, variants)
    reports = []
    for name, outputs, ppl in zip(round_trips, changed, changed_perplexities, strict=True):
        matching = [_matching_prefix(a, b) for a, b in zip(exact, outputs, strict=True)]
        reports.append(
            QualityReport(
                scheme=name,
                num_continuations=len(prompts),
                num_identical=sum(m == num_tokens for m in matching),
                mean_matching_tokens=sum(matching) / len(matching),
                perplexity_exact=perplexity_exact,
                perplexity=ppl,
            )
        )
    return reports


@torch.inference_mode()
def greedy_continuations(
    model: LlamaModel,
    dtype: torch.dtype,
    prompts: Sequence[list[int]],
    round_trips: Sequence[RoundTrip | None],
    num_tokens: int,
) -> list[list[list[int]]]:
    """Per round trip (None: exact K/V), the greedy tokens after each prompt."""
    if any(len(p) < 2 for p in prompts):
        raise ValueError("every prompt needs at least two tokens")
    lengths = [len(p) - 1 for p in prompts]  # cached; the last prompt token is decoded
    num_prompts, num_variants = len(prompts), len(round_trips)
    cache = _PrivateCache(model, dtype, num_prompts * num_variants, max(lengths) + num_tokens)
    cache.forward([p[:-1] for p in prompts], [0] * num_prompts)  # into the first variant's slots
    for variant, round_trip in enumerate(round_trips):
        for index, length in enumerate(lengths):
            seq = variant * num_prompts + index
            cache.copy_sequence(index, seq, length)
            if round_trip is not None:
                cache.round_trip(seq, length, round_trip)
    inputs = [p[-1] for p in prompts] * num_variants
    positions = lengths * num_variants
    outputs: list[list[int]] = [[] for _ in inputs]
    for _ in range(num_tokens):
        hidden = cache.forward([[t] for t in inputs], positions)  # [B, 1, H]
        inputs = model.logits(hidden[:, 0]).argmax(dim=-1).tolist()
        for output, token in zip(outputs, inputs, strict=True):
            output.append(token)
        positions = [p + 1 for p in positions]
    return [outputs[v * num_prompts : (v + 1) * num_prompts] for v in range(num_variants)]


@torch.inference_mode()
def perplexities(
    model: LlamaModel,
    dtype: torch.dtype,
    text_ids: list[int],
    round_trips: Sequence[RoundTrip | None],
) -> list[float]:
    """Per round trip, the perplexity of the second half of ``text_ids`` given the first."""
    split = len(text_ids) // 2
    if split < 2:
        raise ValueError("the text needs at least four tokens")
    cache = _PrivateCache(model, dtype, len(round_trips), len(text_ids))
    cache.forward([text_ids[:split]], [0])
    for variant, round_trip in enumerate(round_trips):
        cache.copy_sequence(0, variant, split)
        if round_trip is not None:
            cache.round_trip(variant, split, round_trip)
    rest = text_ids[split:]
    hidden = cache.forward([rest] * len(round_trips), [split] * len(round_trips))  # [B, S, H]
    targets = torch.tensor(rest[1:])
    results = []
    for row in hidden:
        logits = model.logits(row[:-1]).float()  # row i predicts token split + i + 1
        nll = torch.nn.functional.cross_entropy(logits, targets)
        results.append(math.exp(nll.item()))
    return results


class _PrivateCache:
    """A pool-shaped KV tensor with one contiguous slot range per sequence."""

    def __init__(self, model: LlamaModel, dtype: torch.dtype, num_seqs: int, capacity: int) -> None:
        cfg = model.config
        self.model = model
        self.capacity = capacity
        self.null_slot = num_seqs * capacity  # padded tokens write here; never visible
        device = model.embed_tokens.weight.device
        self.device = device
        self.kv = torch.zeros(
            cfg.num_layers,
            self.null_slot + 1,
            2,
            cfg.num_kv_heads,
            cfg.head_dim,
            dtype=dtype,
            device=device,
        )  # [L, N, 2, Hkv, D]

    def copy_sequence(self, src: int, dst: int, length: int) -> None:
        if src != dst:
            self.kv[:, self._span(dst, length)] = self.kv[:, self._span(src, length)]

    def round_trip(self, seq: int, length: int, round_trip: RoundTrip) -> None:
        span = self._span(seq, length)
        self.kv[:, span] = round_trip(self.kv[:, span].clone()).to(self.kv.dtype)

    def _span(self, seq: int, length: int) -> slice:
        return slice(seq * self.capacity, seq * self.capacity + length)

    def forward(self, token_lists: list[list[int]], starts: list[int]) -> torch.Tensor:
        """Run every sequence's tokens from its start position; hidden states [B, S, H]."""
        device = self.device
        sizes = torch.tensor([len(t) for t in token_lists], device=device)  # [B]
        max_len = int(sizes.max())
        tokens = torch.tensor(
            [ids + [0] * (max_len - len(ids)) for ids in token_lists], device=device
        )  # [B, S]
        start = torch.tensor(starts, device=device)[:, None]  # [B, 1]
        base = torch.arange(len(token_lists), device=device)[:, None] * self.capacity  # [B, 1]
        steps = torch.arange(max_len, device=device)
        is_real = steps[None, :] < sizes[:, None]  # [B, S]
        # Padded queries get position 0 so that no softmax row is empty (as in ModelRunner).
        positions = torch.where(is_real, start + steps, 0)  # [B, S]
        write_slots = torch.where(is_real, base + positions, self.null_slot)
        ends = start + sizes[:, None]  # [B, 1]
        key_positions = torch.arange(int(ends.max()), device=device)  # [T]
        context_slots = torch.where(
            key_positions[None, :] < ends, base + key_positions, self.null_slot
        )  # [B, T]
        mask = key_positions[None, None, :] <= positions[:, :, None]  # [B, S, T]
        window = self.model.config.sliding_window
        if window is not None:
            mask &= key_positions[None, None, :] > positions[:, :, None] - window
        cos, sin = self.model.rope_for(positions, torch.float32)
        batch = AttentionBatch(
            kv_cache=self.kv,
            write_slots=write_slots.reshape(-1),
            context_slots=context_slots,
            mask=mask[:, None],
            cos=cos,
            sin=sin,
        )
        return self.model(tokens, batch)


def _matching_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), len(a))
