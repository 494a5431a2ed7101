"""/v1/embeddings is metered like chat (issue 17): each call writes a usage row for the
local embedding model, visible in /v1/usage and `roost usage`, and a token budget caps it.
The bundled all-MiniLM-L6-v2 answers; the official openai SDK is the client."""

from __future__ import annotations

import json
from pathlib import Path

import openai
import pytest

from tests.server.conftest import BOOTSTRAP_KEY, AppFactory
from tests.support.process import run_roost

MODEL = "all-MiniLM-L6-v2"
KEY = {"Authorization": f"Bearer {BOOTSTRAP_KEY}"}


@pytest.mark.slow  # `roost usage` runs as its own process
async def test_embeddings_are_metered_and_shown_in_usage(
    make_app: AppFactory, roost_home: Path
) -> None:
    async with make_app() as (_, client):
        oai = openai.AsyncOpenAI(
            base_url="http://roost/v1", api_key=BOOTSTRAP_KEY, http_client=client, max_retries=0
        )
        one = await oai.embeddings.create(model=MODEL, input="a small grey cat")
        two = await oai.embeddings.create(model=MODEL, input=["two dogs", "a very large horse"])
        billed = one.usage.prompt_tokens + two.usage.prompt_tokens
        assert one.usage.prompt_tokens > 0
        usage = (await client.get("/v1/usage", params={"group_by": "model"}, headers=KEY)).json()
    [row] = [r for r in usage["rows"] if r["model"] == f"local:{MODEL}"]
    assert row["calls"] == 2
    assert (row["input_tokens"], row["output_tokens"]) == (billed, 0)
    assert row["cost_usd"] == 0  # local, no price configured

    cli = run_roost("usage", "--tenant", "default", "--json", env={"ROOST_HOME": str(roost_home)})
    assert cli.returncode == 0, cli.stderr
    [report] = json.loads(cli.stdout)
    assert report["total_calls"] == 2
    assert report["total_input_tokens"] == billed


async def test_a_token_budget_caps_embeddings(make_app: AppFactory) -> None:
    budgets = [{"limit_tokens": 10, "period": "day"}]  # every tenant
    async with make_app({"ROOST_LLM__BUDGETS": json.dumps(budgets)}) as (_, client):
        oai = openai.AsyncOpenAI(
            base_url="http://roost/v1", api_key=BOOTSTRAP_KEY, http_client=client, max_retries=0
        )
        first = await oai.embeddings.create(model=MODEL, input="one two three four five six")
        assert 5 <= first.usage.prompt_tokens <= 10  # the second cannot fit as well
        with pytest.raises(openai.RateLimitError) as refused:
            await oai.embeddings.create(model=MODEL, input="seven eight nine ten eleven twelve")
        assert refused.value.code == "budget_exceeded"
        usage = (await client.get("/v1/usage", headers=KEY)).json()
    [budget] = usage["budgets"]
    assert budget["spent_tokens"] == first.usage.prompt_tokens
    assert budget["reserved_tokens"] == 0
