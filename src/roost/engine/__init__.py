"""Roost's local inference engine: Llama-family models on a paged KV cache.

Usable on its own::

    from roost.engine import Engine, EngineConfig, SamplingParams

    with Engine(EngineConfig(model="smollm2-135m-instruct")) as engine:
        ids = engine.apply_chat_template([{"role": "user", "content": "Hi!"}])
        print(engine.generate(ids, SamplingParams(temperature=0))[0].text)
"""

from roost.engine.engine import Engine
from roost.engine.engine_config import EngineConfig
from roost.engine.outputs import EngineEvent, EngineUsage, RequestOutput
from roost.engine.sampling_params import SamplingParams, StructuredOutput
from roost.engine.tokenizer import Tokenizer

__all__ = [
    "Engine",
    "EngineConfig",
    "EngineEvent",
    "EngineUsage",
    "RequestOutput",
    "SamplingParams",
    "StructuredOutput",
    "Tokenizer",
]
