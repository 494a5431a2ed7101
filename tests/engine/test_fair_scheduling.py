"""Fair sharing of slots between tenants, decided by the scheduler alone (no model)."""

from __future__ import annotations

import itertools

from roost.engine.block_pool import BlockPool
from roost.engine.sampling_params import SamplingParams
from roost.engine.scheduler import Scheduler
from roost.engine.sequence import Sequence, SequenceStatus

_arrivals = itertools.count()


def _seq(tenant: str, num_prompt: int = 8) -> Sequence:
    index = next(_arrivals)
    seq = Sequence(
        request_id=f"{tenant}-{index}",
        prompt_token_ids=[(index * 31 + i) % 500 for i in range(num_prompt)],
        params=SamplingParams(temperature=0),
        arrival_index=index,
        max_total_tokens=10_000,
    )
    seq.tenant = tenant
    return seq


def _step(scheduler: Scheduler) -> None:
    plan = scheduler.schedule()
    scheduler.after_forward(plan)
    for chunk in plan.prefill:
        if chunk.is_last:
            scheduler.mark_decoding(chunk.seq)
            chunk.seq.output_token_ids.append(1)
    for seq in plan.decode:
        seq.output_token_ids.append(1)


def _flood_then_one(*, is_fair: bool, weights: dict[str, float] | None = None):
    scheduler = Scheduler(
        BlockPool(400, 16), max_num_seqs=4, prefill_chunk_tokens=256,
        is_fair=is_fair, tenant_weights=weights,
    )  # fmt: skip
    flood = [_seq("a") for _ in range(10)]
    for seq in flood:
        scheduler.add(seq)
    _step(scheduler)
    late = _seq("b")
    scheduler.add(late)
    _step(scheduler)
    return scheduler, flood, late


def test_a_flooding_tenant_does_not_keep_another_waiting() -> None:
    scheduler, flood, late = _flood_then_one(is_fair=True)
    # b got a slot at the very next step: one of a's four running was preempted for it.
    assert late.status is SequenceStatus.DECODING
    assert scheduler.running_by_tenant() == {"a": 3, "b": 1}
    assert sum(s.num_preemptions for s in flood) == 1


def test_without_fairness_the_late_tenant_queues_behind_the_flood() -> None:
    scheduler, _, late = _flood_then_one(is_fair=False)
    assert late.status is SequenceStatus.WAITING
    assert scheduler.running_by_tenant() == {"a": 4}


def test_slots_settle_at_the_fair_share_without_thrashing() -> None:
    scheduler = Scheduler(BlockPool(400, 16), max_num_seqs=4, prefill_chunk_tokens=256)
    a = [_seq("a") for _ in range(6)]
    b = [_seq("b") for _ in range(6)]
    for seq in a:
        scheduler.add(seq)
    _step(scheduler)
    for seq in b:
        scheduler.add(seq)
    for _ in range(5):
        _step(scheduler)
        assert scheduler.running_by_tenant() == {"a": 2, "b": 2}
    # Two preemptions made room for b; none after the shares were reached.
    assert sum(s.num_preemptions for s in a + b) == 2


def test_weights_split_the_slots() -> None:
    scheduler = Scheduler(
        BlockPool(400, 16), max_num_seqs=4, prefill_chunk_tokens=256,
        tenant_weights={"gold": 3.0},
    )  # fmt: skip
    for _ in range(6):
        scheduler.add(_seq("plain"))
        scheduler.add(_seq("gold"))
    for _ in range(3):
        _step(scheduler)
    assert scheduler.running_by_tenant() == {"gold": 3, "plain": 1}


def test_admission_alternates_between_waiting_tenants() -> None:
    scheduler = Scheduler(BlockPool(400, 16), max_num_seqs=8, prefill_chunk_tokens=256)
    for _ in range(6):
        scheduler.add(_seq("a"))
    for _ in range(2):
        scheduler.add(_seq("b"))
    _step(scheduler)
    # Both of b's requests were admitted although a's six arrived first.
    assert scheduler.running_by_tenant() == {"a": 6, "b": 2}


def test_prefill_chunks_go_round_robin_across_tenants() -> None:
    scheduler = Scheduler(BlockPool(400, 16), max_num_seqs=8, prefill_chunk_tokens=256)
    long_a = [_seq("a", num_prompt=300) for _ in range(2)]
    short_b = _seq("b", num_prompt=20)
    for seq in [*long_a, short_b]:
        scheduler.add(seq)
    plan = scheduler.schedule()
    # b's short prompt is in the first step's budget, not behind both of a's long prompts.
    assert short_b in [chunk.seq for chunk in plan.prefill]
