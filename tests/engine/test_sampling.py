"""SamplingParams validation and the sampler's token choice."""

from __future__ import annotations

import pytest
import torch

from roost.engine.sampler import sample
from roost.engine.sampling_params import SamplingParams, StructuredOutput
from roost.engine.sequence import Sequence
from roost.errors import InvalidRequest


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"temperature": -0.1}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"min_p": 1.5}, "min_p"),
        ({"repetition_penalty": 0.0}, "repetition_penalty"),
        ({"presence_penalty": 3.0}, "presence_penalty"),
        ({"frequency_penalty": -2.5}, "frequency_penalty"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"logprobs": True, "top_logprobs": 21}, "top_logprobs"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"stop": [""]}, "stop"),
        ({"seed": -1}, "seed"),
    ],
)
def test_out_of_range_values_name_the_field(kwargs: dict[str, object], param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        SamplingParams(**kwargs)  # type: ignore[arg-type]
    assert caught.value.param == param
    assert param in caught.value.message


def test_structured_output_needs_exactly_one_kind() -> None:
    with pytest.raises(InvalidRequest) as caught:
        StructuredOutput(regex="a+", json_object=True)
    assert caught.value.param == "response_format"


def test_single_stop_string_is_normalised_to_a_tuple() -> None:
    assert SamplingParams(stop="END").stop_strings == ("END",)


def _seq(params: SamplingParams, output: list[int] | None = None, seed: int = 0) -> Sequence:
    seq = Sequence("r", [2], params, 0, 100, output_token_ids=list(output or []))
    seq.generator = torch.Generator().manual_seed(seed)
    return seq


def test_greedy_picks_argmax_and_reports_logprobs() -> None:
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.0]])
    params = SamplingParams(temperature=0, logprobs=True, top_logprobs=2)
    [(token, info)] = sample(logits, [_seq(params)])
    assert token == 1
    assert info is not None
    assert [t for t, _ in info.top] == [1, 3]
    assert info.logprob == pytest.approx(float(torch.log_softmax(logits[0], -1)[1]))


def test_top_k_one_and_top_p_keep_only_the_best_token() -> None:
    logits = torch.tensor([[0.0, 5.0, 4.9, 1.0]])
    for params in (SamplingParams(top_k=1), SamplingParams(top_p=0.01)):
        picks = {sample(logits, [_seq(params, seed=s)])[0][0] for s in range(20)}
        assert picks == {1}


def test_min_p_removes_unlikely_tokens() -> None:
    logits = torch.tensor([[5.0, 5.0, -5.0, -5.0]])
    picks = {sample(logits, [_seq(SamplingParams(min_p=0.5), seed=s)])[0][0] for s in range(40)}
    assert picks == {0, 1}


def test_same_seed_same_tokens() -> None:
    logits = torch.zeros(1, 1000)
    params = SamplingParams(temperature=1.0)
    first = [sample(logits, [_seq(params, seed=42)])[0][0] for _ in range(3)]
    second = [sample(logits, [_seq(params, seed=42)])[0][0] for _ in range(3)]
    assert first == second
    assert len({sample(logits, [_seq(params, seed=s)])[0][0] for s in range(10)}) > 1


def test_penalties_push_repeated_tokens_down() -> None:
    logits = torch.tensor([[2.0, 1.9, 0.0]])
    greedy = SamplingParams(temperature=0, frequency_penalty=1.0)
    assert sample(logits, [_seq(greedy, output=[0])])[0][0] == 1
    repetition = SamplingParams(temperature=0, repetition_penalty=2.0)
    assert sample(logits, [_seq(repetition, output=[0])])[0][0] == 1
    presence = SamplingParams(temperature=0, presence_penalty=0.2)
    assert sample(logits, [_seq(presence, output=[0, 0, 0])])[0][0] == 1
