"""The local embedding model as one HTTP caller sees it (``/v1/embeddings``), metered like
chat: the input's word pieces are counted first (what an embeddings API bills), taken from
the caller's tokens-per-minute limits and held against its token budgets before the model
runs; afterwards one usage row (``local:all-MiniLM-L6-v2``, tokens in, none out, latency,
cost 0 unless ``[llm.prices]`` prices it) settles them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from roost.llm.base import RequestContext
from roost.llm.embeddings import MiniLMEmbedder, Vectors
from roost.llm.messages import Usage
from roost.llm.metering import Meter, TokenLimits
from roost.llm.usage import UsageStatus


class MeteredEmbedder:
    def __init__(
        self,
        embedder: MiniLMEmbedder,
        meter: Meter,
        context: RequestContext,
        token_limits: TokenLimits | None = None,
        *,
        model_name: str = "all-MiniLM-L6-v2",
    ) -> None:
        self.embedder = embedder
        self.meter = meter
        self.context = context
        self.token_limits = token_limits
        self.model_id = f"local:{model_name}"

    @property
    def dimension(self) -> int:
        return self.embedder.dimension

    async def embed(self, texts: Sequence[str]) -> tuple[Vectors, int]:
        """Vectors of ``texts`` and the tokens they held; raises 429 (limits) or the budget's
        refusal before the model runs."""
        embedder = self.embedder
        tokens = await asyncio.to_thread(lambda: sum(embedder.count_tokens(t) for t in texts))
        context = self.context
        if self.token_limits is not None:
            await self.token_limits.take_tokens(context.tenant_id, context.key_id, tokens)
        try:
            usage = Usage(tokens)
            reservation = await self.meter.reserve(
                context, cost_nano=self.meter.prices.cost_nano(self.model_id, usage), tokens=tokens
            )
        except BaseException:
            if self.token_limits is not None:
                await self.token_limits.settle_tokens(context.tenant_id, context.key_id, -tokens)
            raise
        started = time.perf_counter()
        status: UsageStatus = "cancelled"
        try:
            vectors = await embedder.embed(texts)
            status = "ok"
        except Exception:
            status = "error"
            raise
        finally:
            latency_ms = int((time.perf_counter() - started) * 1000)
            spent = usage if status == "ok" else Usage()
            await self.meter.record(reservation, context, self.model_id, spent, latency_ms, status)
            if self.token_limits is not None and status != "ok":
                await self.token_limits.settle_tokens(context.tenant_id, context.key_id, -tokens)
        return vectors, tokens
