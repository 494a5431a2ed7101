"""Decides what the next model step computes: prefill chunks, one decode token per sequence.

Continuous batching: waiting requests are admitted between steps whenever KV blocks allow;
a long prompt is split into chunks so that running sequences keep decoding in between.
When the pool runs dry the youngest sequence is preempted (blocks freed, requeued) and
recomputed later, so running out of KV memory slows requests down but never fails them.

Tenants share slots fairly (``is_fair``): waiting requests are admitted by weighted fair
share (:class:`~roost.engine.fair_queue.FairQueue`); when every slot or block is taken
and a tenant below its share waits, the youngest sequence of the tenant furthest above
its share is preempted to make room, and each tenant gets an equal part of a step's prefill budget.
A tenant's share is ``max_num_seqs`` split by weight among the tenants with work.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from roost.engine.block_pool import BlockHash, BlockPool, hash_block, prefix_hashes
from roost.engine.fair_queue import FairQueue
from roost.engine.sequence import Sequence, SequenceStatus


@dataclass(slots=True)
class PrefillChunk:
    """Positions ``start .. end-1`` of ``seq`` to run through the model this step."""

    seq: Sequence
    start: int
    end: int

    @property
    def is_last(self) -> bool:
        """True when the chunk reaches the sequence's last token, so it yields logits."""
        return self.end == self.seq.num_tokens


@dataclass(slots=True)
class StepPlan:
    prefill: list[PrefillChunk] = field(default_factory=list)
    decode: list[Sequence] = field(default_factory=list)
    block_copies: list[tuple[int, int]] = field(default_factory=list)  # (src, dst) for CoW
    preempted: list[Sequence] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        return not self.prefill and not self.decode


class Scheduler:
    """Queues and block tables of all live sequences; used only by the worker thread."""

    def __init__(
        self,
        pool: BlockPool,
        *,
        max_num_seqs: int,
        prefill_chunk_tokens: int,
        is_fair: bool = True,
        tenant_weights: Mapping[str, float] | None = None,
    ) -> None:
        self.pool = pool
        self.block_size = pool.block_size
        self.max_num_seqs = max_num_seqs
        self.prefill_chunk_tokens = prefill_chunk_tokens
        self.is_fair = is_fair
        self.waiting = FairQueue(is_fair=is_fair, weights=tenant_weights)
        self.prefilling: list[Sequence] = []
        self.decoding: list[Sequence] = []
        self._preempted_for_fairness: list[Sequence] = []
        # Called for the sequence admission is about to take, before it looks for cached
        # blocks: the engine brings the sequence's session cache back into the pool then,
        # not when the request arrives (an early promotion is demoted again while it waits).
        self.before_admit: Callable[[Sequence], None] | None = None

    @property
    def num_running(self) -> int:
        return len(self.prefilling) + len(self.decoding)

    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    @property
    def has_work(self) -> bool:
        return bool(self.waiting or self.prefilling or self.decoding)

    def add(self, seq: Sequence) -> None:
        seq.status = SequenceStatus.WAITING
        self.waiting.append(seq)

    def schedule(self) -> StepPlan:
        plan = StepPlan()
        self._admit()
        plan.preempted, self._preempted_for_fairness = self._preempted_for_fairness, []
        self._plan_prefill(plan)
        self._plan_decode(plan)
        return plan

    def next_waiting(self) -> Sequence | None:
        """The request admission would take next (None when nothing waits)."""
        return self.waiting.peek(self.running_by_tenant()) if self.waiting else None

    def running_by_tenant(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        for seq in self.prefilling:
            counts[seq.tenant] += 1
        for seq in self.decoding:
            counts[seq.tenant] += 1
        return counts

    def _admit(self) -> None:
        if not self.waiting:
            return
        deferred: list[Sequence] = []
        in_flight = self._blocks_in_flight()
        preemptions_left = self.max_num_seqs
        while self.waiting:
            seq = self.waiting.peek(self.running_by_tenant())
            if self.num_running >= self.max_num_seqs:
                if preemptions_left and self._preempt_for(seq):
                    preemptions_left -= 1
                    continue
                break
            if self.before_admit is not None:
                self.before_admit(seq)
            tokens = seq.token_ids()
            num_needed = -(-len(tokens) // self.block_size)
            # At least the last token is recomputed: its logits pick the next token.
            cached, hashes = self.pool.acquire_prefix(
                tokens, (len(tokens) - 1) // self.block_size, seq.cache_salt
            )
            parent = hashes[-1] if hashes else seq.cache_salt
            if in_flight and self._next_block_hash(tokens, len(cached), parent) in in_flight:
                # Another prompt is computing this very block: wait a step and reuse it
                # rather than compute it twice (many agents arriving under one prompt).
                self.pool.free_all(cached)
                self.waiting.remove(seq)
                deferred.append(seq)
                continue
            # Keep one block per decoding sequence in reserve so admitting a prompt does
            # not immediately force a preemption.
            headroom = len(self.decoding)
            if not self.pool.can_allocate(num_needed - len(cached) + headroom):
                self.pool.free_all(cached)
                if preemptions_left and self._preempt_for(seq):
                    preemptions_left -= 1
                    continue
                break
            self.waiting.remove(seq)
            seq.block_table = cached + [
                self.pool.allocate() for _ in range(num_needed - len(cached))
            ]
            seq.num_computed_tokens = len(cached) * self.block_size
            seq.num_hashed_blocks = len(cached)
            num_full = (len(tokens) - 1) // self.block_size  # the blocks others may reuse
            seq.block_hashes = hashes + prefix_hashes(
                tokens[len(cached) * self.block_size : num_full * self.block_size],
                self.block_size,
                num_full - len(cached),
                parent,
            )
            if seq.num_preemptions == 0:
                seq.num_cached_prompt_tokens = seq.num_computed_tokens
            seq.status = SequenceStatus.PREFILLING
            self.prefilling.append(seq)
            if self.pool.enable_prefix_cache:
                in_flight |= self._pending_hashes(seq)
        for seq in reversed(deferred):
            self.waiting.appendleft(seq)

    def _preempt_for(self, seq: Sequence) -> bool:
        """Preempt the youngest sequence of the tenant furthest above its fair share, when
        ``seq``'s tenant would stay within its share and the victim's would not drop below
        its own (so two tenants never take a slot back and forth). True if one was."""
        if not self.is_fair:
            return False
        running = self.running_by_tenant()
        tenants = set(running) | self.waiting.tenants()
        total = sum(self.waiting.weight(t) for t in tenants)

        def share(tenant: str) -> float:
            return self.max_num_seqs * self.waiting.weight(tenant) / total

        if running.get(seq.tenant, 0) + 1 > share(seq.tenant):
            return False
        over = [t for t, n in running.items() if t != seq.tenant and n - 1 >= share(t)]
        if not over:
            return False
        victim_tenant = max(over, key=lambda t: running[t] / self.waiting.weight(t))
        victim = max(
            (s for s in self.prefilling + self.decoding if s.tenant == victim_tenant),
            key=lambda s: s.arrival_index,
        )
        self.preempt(victim)
        self._preempted_for_fairness.append(victim)
        return True

    def _blocks_in_flight(self) -> set[BlockHash]:
        """Hashes of full prompt blocks that prefilling sequences are about to compute."""
        pending: set[BlockHash] = set()
        if self.pool.enable_prefix_cache:
            for seq in self.prefilling:
                pending |= self._pending_hashes(seq)
        return pending

    def _pending_hashes(self, seq: Sequence) -> set[BlockHash]:
        return set(seq.block_hashes[seq.num_hashed_blocks :])

    def _next_block_hash(self, tokens: list[int], num_cached: int, parent: BlockHash) -> BlockHash:
        """Hash of the first block admission would have to compute (b"" if none is full)."""
        end = (num_cached + 1) * self.block_size
        if end > len(tokens) - 1:
            return b""
        return hash_block(parent, tokens[num_cached * self.block_size : end])

    def _plan_prefill(self, plan: StepPlan) -> None:
        budget = self.prefill_chunk_tokens
        planned: dict[int, int] = {}  # id(seq) -> chunk end
        for seq, cap in self._prefill_passes(budget):
            if budget <= 0:
                break
            start = planned.get(id(seq), seq.num_computed_tokens)
            end = min(seq.num_tokens, start + min(budget, cap))
            if end > start:
                planned[id(seq)] = end
                budget -= end - start
        for seq in self.prefilling:
            if id(seq) in planned:
                plan.prefill.append(PrefillChunk(seq, seq.num_computed_tokens, planned[id(seq)]))

    def _prefill_passes(self, budget: int) -> list[tuple[Sequence, int]]:
        """Sequences to give prefill tokens, each with a cap. Unfair, or one tenant: in
        arrival order, uncapped. Fair with several tenants: first each tenant's equal part
        of the budget (its sequences in order), then what is left in that same order."""
        by_tenant: dict[str, list[Sequence]] = defaultdict(list)
        for seq in self.prefilling:
            by_tenant[seq.tenant].append(seq)
        if not self.is_fair or len(by_tenant) < 2:
            return [(seq, budget) for seq in self.prefilling]
        part = budget // len(by_tenant)
        first: list[tuple[Sequence, int]] = []
        for queue in by_tenant.values():
            left = part
            for seq in queue:
                take = min(left, seq.num_tokens - seq.num_computed_tokens)
                if take <= 0:
                    break
                first.append((seq, take))
                left -= take
        return first + [(seq, budget) for seq in self.prefilling]

    def _plan_decode(self, plan: StepPlan) -> None:
        index = 0
        while index < len(self.decoding):
            seq = self.decoding[index]
            if self._reserve_decode_slot(seq, plan):
                index += 1
                continue
            victim = self._youngest_active()
            if victim in self.decoding and self.decoding.index(victim) < index:
                index -= 1  # an already reserved sequence leaves the list before `seq`
            self.preempt(victim)
            plan.preempted.append(victim)
            plan.prefill = [chunk for chunk in plan.prefill if chunk.seq is not victim]
        plan.decode = list(self.decoding)

    def _reserve_decode_slot(self, seq: Sequence, plan: StepPlan) -> bool:
        position = seq.num_computed_tokens  # the new token's K/V goes here
        block_index = position // self.block_size
        if block_index == len(seq.block_table):
            if not self.pool.can_allocate(1):
                return False
            seq.block_table.append(self.pool.allocate())
        elif self.pool.ref_counts[seq.block_table[block_index]] > 1:
            if not self.pool.can_allocate(1):
                return False
            old = seq.block_table[block_index]
            new, needs_copy = self.pool.copy_on_write(old)
            seq.block_table[block_index] = new
            if needs_copy:
                plan.block_copies.append((old, new))
        return True

    def _youngest_active(self) -> Sequence:
        return max(self.prefilling + self.decoding, key=lambda s: s.arrival_index)

    def preempt(self, seq: Sequence) -> None:
        """Free ``seq``'s blocks and put it first in line; it is recomputed when readmitted."""
        self._release(seq)
        seq.num_preemptions += 1
        seq.status = SequenceStatus.WAITING
        self.waiting.appendleft(seq)

    def finish(self, seq: Sequence, reason: str) -> None:
        """Remove ``seq`` from every queue and free its blocks now."""
        if seq.status is SequenceStatus.WAITING:
            self.waiting.remove(seq)
        elif seq.status is not SequenceStatus.FINISHED:
            self._release(seq)
        seq.status = SequenceStatus.FINISHED
        seq.finish_reason = reason

    def _release(self, seq: Sequence) -> None:
        if seq in self.prefilling:
            self.prefilling.remove(seq)
        if seq in self.decoding:
            self.decoding.remove(seq)
        self.pool.free_all(seq.block_table)
        seq.block_table = []
        seq.num_computed_tokens = 0
        seq.num_hashed_blocks = 0
        seq.block_hashes = []

    def after_forward(self, plan: StepPlan) -> None:
        """Advance computed-token counts and publish newly completed blocks to the prefix cache."""
        for chunk in plan.prefill:
            chunk.seq.num_computed_tokens = chunk.end
            self._register_full_blocks(chunk.seq)
        for seq in plan.decode:
            seq.num_computed_tokens += 1
            self._register_full_blocks(seq)

    def mark_decoding(self, seq: Sequence) -> None:
        """Move a sequence whose prompt is fully computed into the decode set."""
        self.prefilling.remove(seq)
        seq.status = SequenceStatus.DECODING
        self.decoding.append(seq)

    def _register_full_blocks(self, seq: Sequence) -> None:
        size = self.block_size
        while (seq.num_hashed_blocks + 1) * size <= seq.num_computed_tokens:
            index = seq.num_hashed_blocks
            if index == len(seq.block_hashes):  # filled by generated tokens: not hashed yet
                parent = seq.block_hashes[-1] if index else seq.cache_salt
                tokens = [seq.token_at(p) for p in range(index * size, (index + 1) * size)]
                seq.block_hashes.append(hash_block(parent, tokens))
            self.pool.register(seq.block_table[index], seq.block_hashes[index])
            seq.num_hashed_blocks += 1
