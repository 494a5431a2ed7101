"""Prices and the cost of a call.

A versioned price table ships in the package (``prices.json``, USD per million tokens);
``[llm.prices]`` in roost.toml overrides or extends it. Money is counted in integer
nano-dollars so that sums over millions of calls stay exact on every backend.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources

from roost.config import LLMPriceSettings
from roost.llm.messages import Usage

NANO_PER_USD = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """USD per million tokens; cached input defaults to the input price."""

    input: float
    output: float
    cached_input: float | None = None

    def cost_nano(self, usage: Usage) -> int:
        """Cost of ``usage`` in nano-dollars (USD x 1e-9), rounded up."""
        cached = min(usage.cached_input_tokens, usage.input_tokens)
        cached_price = self.input if self.cached_input is None else self.cached_input
        # per-1M-token price x tokens = micro-dollars per token x 1e3 nano per micro
        nano = (
            (usage.input_tokens - cached) * self.input
            + cached * cached_price
            + usage.output_tokens * self.output
        ) * 1000
        return int(-(-nano // 1))

    @property
    def blended(self) -> float:
        """One number to rank deployments by: mean of input and output price."""
        return (self.input + self.output) / 2


class PriceTable:
    """Looks up the price of a ``provider:model`` id, with overrides on top of the shipped table."""

    def __init__(self, prices: Mapping[str, Price], version: str) -> None:
        self.prices = dict(prices)
        self.version = version
        self._by_name: dict[str, Price | None] = {}

    @classmethod
    def load(cls, overrides: Mapping[str, LLMPriceSettings] | None = None) -> PriceTable:
        """The shipped table with ``overrides`` (from ``[llm.prices]``) applied."""
        raw = json.loads(resources.files("roost.llm").joinpath("prices.json").read_text())
        prices = {model_id: Price(**entry) for model_id, entry in raw["models"].items()}
        version = str(raw["version"])
        for model_id, price in (overrides or {}).items():
            prices[model_id] = Price(price.input, price.output, price.cached_input)
        if overrides:
            version += "+local"
        return cls(prices, version)

    def get(self, model_id: str) -> Price | None:
        """The price of ``model_id``; a bare model name is tried when the full id is unknown,
        so an OpenAI-compatible host serving ``gpt-4.1-mini`` is priced like OpenAI's."""
        price = self.prices.get(model_id)
        if price is not None:
            return price
        if model_id in self._by_name:
            return self._by_name[model_id]
        _, _, name = model_id.partition(":")
        found = next(
            (p for known, p in self.prices.items() if known.partition(":")[2] == name), None
        )
        self._by_name[model_id] = found
        return found

    def cost_nano(self, model_id: str, usage: Usage) -> int:
        """Cost in nano-dollars; 0 for models without a price (local, self-hosted)."""
        price = self.get(model_id)
        return price.cost_nano(usage) if price is not None else 0


def usd(nano: int) -> float:
    """Nano-dollars as dollars, for display."""
    return nano / NANO_PER_USD
