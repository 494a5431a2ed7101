"""Scheduler decisions without a model: chunking, admission, preemption, prefix reuse."""

from __future__ import annotations

from roost.engine.block_pool import BlockPool
from roost.engine.sampling_params import SamplingParams
from roost.engine.scheduler import Scheduler
from roost.engine.sequence import Sequence, SequenceStatus


def _seq(index: int, num_prompt: int, first_token: int = 0) -> Sequence:
    return Sequence(
        request_id=f"r{index}",
        prompt_token_ids=[first_token + i for i in range(num_prompt)],
        params=SamplingParams(temperature=0),
        arrival_index=index,
        max_total_tokens=10_000,
    )


def _complete_step(scheduler: Scheduler, token: int = 7) -> None:
    """What the engine does after a forward: advance, then append one sampled token."""
    plan = scheduler.schedule()
    scheduler.after_forward(plan)
    for chunk in plan.prefill:
        if chunk.is_last:
            scheduler.mark_decoding(chunk.seq)
            chunk.seq.output_token_ids.append(token)
    for seq in plan.decode:
        seq.output_token_ids.append(token)


def test_long_prompt_is_chunked_and_decode_runs_between_chunks() -> None:
    scheduler = Scheduler(BlockPool(200, 16), max_num_seqs=8, prefill_chunk_tokens=256)
    short, long = _seq(0, 10), _seq(1, 700, first_token=1000)
    scheduler.add(short)
    _complete_step(scheduler)  # short prompt prefilled in one chunk
    scheduler.add(long)
    spans = []
    for _ in range(3):
        plan = scheduler.schedule()
        spans.append([(c.start, c.end) for c in plan.prefill])
        assert plan.decode == [short]  # streaming continues during the long prefill
        scheduler.after_forward(plan)
        for chunk in plan.prefill:
            if chunk.is_last:
                scheduler.mark_decoding(chunk.seq)
                chunk.seq.output_token_ids.append(1)
        short.output_token_ids.append(1)
    assert spans == [[(0, 256)], [(256, 512)], [(512, 700)]]
    assert long.status is SequenceStatus.DECODING


def test_shared_prefix_blocks_are_reused_for_a_later_request() -> None:
    pool = BlockPool(50, 16)
    scheduler = Scheduler(pool, max_num_seqs=8, prefill_chunk_tokens=256)
    first = _seq(0, 40)
    scheduler.add(first)
    _complete_step(scheduler)
    second = _seq(1, 45)  # same first 40 tokens
    scheduler.add(second)
    plan = scheduler.schedule()
    assert second.num_cached_prompt_tokens == 32  # two full blocks
    assert second.block_table[:2] == first.block_table[:2]
    assert [(c.start, c.end) for c in plan.prefill] == [(32, 45)]
    assert pool.ref_counts[first.block_table[0]] == 2


def test_out_of_blocks_preempts_the_youngest_and_requeues_it() -> None:
    pool = BlockPool(4, 4)
    scheduler = Scheduler(pool, max_num_seqs=8, prefill_chunk_tokens=256)
    old, young = _seq(0, 7), _seq(1, 7, first_token=100)
    scheduler.add(old)
    scheduler.add(young)
    _complete_step(scheduler)  # both prefilled: 2 blocks each, pool full
    assert pool.num_free_blocks == 0
    _complete_step(scheduler)  # position 7 fits in the second block
    plan = scheduler.schedule()  # position 8 needs a third block for each
    assert plan.preempted == [young]
    assert plan.decode == [old]
    assert young.status is SequenceStatus.WAITING
    assert scheduler.next_waiting() is young
    assert young.block_table == []
    assert young.num_output_tokens == 2  # generated tokens survive and are recomputed later
    pool.check_invariants()


def test_finish_frees_blocks_immediately() -> None:
    pool = BlockPool(10, 4)
    scheduler = Scheduler(pool, max_num_seqs=8, prefill_chunk_tokens=256)
    seq = _seq(0, 9)
    scheduler.add(seq)
    _complete_step(scheduler)
    assert pool.num_used_blocks == 3
    scheduler.finish(seq, "cancelled")
    assert pool.num_used_blocks == 0
    assert not scheduler.has_work
    pool.check_invariants()


def test_admission_waits_when_the_pool_is_full() -> None:
    pool = BlockPool(3, 4)
    scheduler = Scheduler(pool, max_num_seqs=8, prefill_chunk_tokens=256)
    first, second = _seq(0, 10), _seq(1, 10, first_token=50)
    scheduler.add(first)
    scheduler.add(second)
    plan = scheduler.schedule()
    assert [c.seq for c in plan.prefill] == [first]
    assert list(scheduler.waiting) == [second]


def test_copy_on_write_duplicates_the_kv_of_a_shared_block() -> None:
    import torch

    from roost.engine.model import LlamaModel
    from roost.engine.model_config import ModelConfig
    from roost.engine.model_runner import ModelRunner

    config = ModelConfig("llama", 32, 16, 32, 2, 2, 1, 8, 64)
    runner = ModelRunner(LlamaModel(config, 64), num_blocks=4, block_size=4, dtype=torch.float32)
    runner.kv_cache[:, 4:8] = torch.randn(2, 4, 2, 1, 8)  # block 1
    pool = BlockPool(4, 4)
    scheduler = Scheduler(pool, max_num_seqs=4, prefill_chunk_tokens=256)
    parent = _seq(0, 5)
    parent.block_table = [pool.allocate(), pool.allocate()]
    parent.num_computed_tokens = 5
    child = _seq(1, 5)
    child.block_table = list(parent.block_table)
    child.num_computed_tokens = 5
    for block in child.block_table:
        pool.share(block)
    child.status = parent.status = SequenceStatus.DECODING
    scheduler.decoding = [parent, child]
    plan = scheduler.schedule()
    assert len(plan.block_copies) == 1
    src, dst = plan.block_copies[0]
    assert src == 1
    assert parent.block_table[1] != child.block_table[1]  # the writer got its own block
    runner.copy_blocks(plan.block_copies)
    assert torch.equal(runner.kv_cache[:, dst * 4 : dst * 4 + 4], runner.kv_cache[:, 4:8])
    pool.check_invariants()


def test_prompts_arriving_together_compute_their_shared_prefix_once() -> None:
    pool = BlockPool(100, 16)
    scheduler = Scheduler(pool, max_num_seqs=8, prefill_chunk_tokens=64)
    # The leader's first 12 blocks (192 tokens) are the followers' too; the two followers
    # are the same prompt, so the second can also reuse the first one's 13th block.
    leader, followers = _seq(0, 200), [_seq(i, 210) for i in (1, 2)]
    for seq in (leader, *followers):
        scheduler.add(seq)
    computed = 0
    while any(s.status is not SequenceStatus.DECODING for s in (leader, *followers)):
        plan = scheduler.schedule()
        computed += sum(chunk.end - chunk.start for chunk in plan.prefill)
        _complete_step(scheduler)
    # The followers waited for the leader's blocks instead of computing them again.
    assert [f.num_cached_prompt_tokens for f in followers] == [192, 208]
    assert computed == 200 + (210 - 192) + (210 - 208)


def test_a_deferred_prompt_does_not_hold_up_unrelated_ones() -> None:
    scheduler = Scheduler(BlockPool(100, 16), max_num_seqs=8, prefill_chunk_tokens=64)
    leader, follower, other = _seq(0, 200), _seq(1, 210), _seq(2, 30, first_token=5000)
    for seq in (leader, follower, other):
        scheduler.add(seq)
    plan = scheduler.schedule()
    assert [c.seq for c in plan.prefill] == [leader]  # 64 tokens: the whole budget
    assert list(scheduler.waiting) == [follower]  # `other` was admitted behind it
    assert other.status is SequenceStatus.PREFILLING
