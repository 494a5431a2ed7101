"""KV pool and warm tier sized from the machine's memory; an oversized pool refused."""

from __future__ import annotations

import pytest

from roost.engine.memory_budget import GB, available_memory_bytes, plan_memory
from roost.errors import InvalidRequest


def test_unset_sizes_take_their_share_of_free_memory() -> None:
    budget = plan_memory(
        kv_cache_gb=None,
        kv_cache_fraction=0.2,
        warm_gb=None,
        warm_fraction=0.1,
        useful_pool_bytes=100 * GB,
        available_bytes=20 * GB,
    )
    assert budget.pool_bytes == 4 * GB
    assert budget.warm_bytes == int(16 * GB * 0.1)


def test_the_pool_is_never_larger_than_every_sequence_at_full_context() -> None:
    budget = plan_memory(
        kv_cache_gb=None,
        kv_cache_fraction=0.5,
        warm_gb=2.0,
        warm_fraction=0.1,
        useful_pool_bytes=GB,
        available_bytes=20 * GB,
    )
    assert (budget.pool_bytes, budget.warm_bytes) == (GB, 2 * GB)


def test_a_configured_pool_larger_than_memory_names_both_numbers() -> None:
    with pytest.raises(InvalidRequest) as raised:
        plan_memory(
            kv_cache_gb=64.0,
            kv_cache_fraction=0.2,
            warm_gb=None,
            warm_fraction=0.1,
            useful_pool_bytes=100 * GB,
            available_bytes=12 * GB,
        )
    assert "64 GB" in str(raised.value) and "12.0 GB" in str(raised.value)
    assert raised.value.param == "engine.kv_cache_gb"


def test_available_memory_is_read_from_this_machine() -> None:
    assert 0 < available_memory_bytes() < 2**50
