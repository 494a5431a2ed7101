"""One request's tokens, KV block table and progress through the scheduler."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from roost.engine.sampling_params import SamplingParams

if TYPE_CHECKING:
    import torch

    from roost.engine.detokenizer import IncrementalDetokenizer
    from roost.engine.grammar import GrammarMatcher


class SequenceStatus(enum.Enum):
    WAITING = "waiting"  # no KV blocks (new or preempted)
    PREFILLING = "prefilling"  # blocks held, prompt partly computed
    DECODING = "decoding"
    FINISHED = "finished"


@dataclass(slots=True)
class TokenLogprob:
    token_id: int
    logprob: float
    top: list[tuple[int, float]] = field(default_factory=list)


@dataclass(slots=True)
class Sequence:
    """Mutable per-request state, touched only by the engine's worker thread."""

    request_id: str
    prompt_token_ids: list[int]
    params: SamplingParams
    arrival_index: int
    max_total_tokens: int
    output_token_ids: list[int] = field(default_factory=list)
    block_table: list[int] = field(default_factory=list)
    num_computed_tokens: int = 0  # tokens whose K/V sit in the cache
    num_cached_prompt_tokens: int = 0  # prompt tokens served by the prefix cache
    num_hashed_blocks: int = 0
    cache_salt: bytes = b""  # starts the block hash chain: the prefix cache is per tenant
    tenant: str = ""  # whose request: slots are shared fairly between tenants
    # Chained hashes of full blocks as far as known: the prompt's from admission, later
    # ones as generated tokens fill them. The first num_hashed_blocks are in the pool.
    block_hashes: list[bytes] = field(default_factory=list)
    status: SequenceStatus = SequenceStatus.WAITING
    num_preemptions: int = 0
    finish_reason: str | None = None
    arrival_time: float = field(default_factory=time.perf_counter)
    first_token_time: float | None = None
    finish_time: float | None = None
    logprobs: list[TokenLogprob] = field(default_factory=list)
    detokenizer: IncrementalDetokenizer | None = None
    grammar: GrammarMatcher | None = None
    generator: torch.Generator | None = None

    @property
    def num_tokens(self) -> int:
        return len(self.prompt_token_ids) + len(self.output_token_ids)

    @property
    def num_prompt_tokens(self) -> int:
        return len(self.prompt_token_ids)

    @property
    def num_output_tokens(self) -> int:
        return len(self.output_token_ids)

    def token_ids(self) -> list[int]:
        return self.prompt_token_ids + self.output_token_ids

    def token_at(self, position: int) -> int:
        num_prompt = len(self.prompt_token_ids)
        if position < num_prompt:
            return self.prompt_token_ids[position]
        return self.output_token_ids[position - num_prompt]

    @property
    def is_finished(self) -> bool:
        return self.status is SequenceStatus.FINISHED
