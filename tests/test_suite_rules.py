"""The rules tests/conftest.py sets for every test: loopback only, markers from fixtures."""

from __future__ import annotations

import socket

import pytest

from tests.support.network_guard import RemoteCallForbidden

# A miniature suite: stand-ins for the real fixtures, wired like tests/conftest.py.
CONFTEST = """
import pytest
from tests.support.markers import mark_by_fixtures, require_marker

def pytest_collection_modifyitems(items):
    mark_by_fixtures(items)

@pytest.fixture
def model_home(tmp_path):
    return tmp_path

@pytest.fixture
def engine(model_home):
    return "the bundled model"

@pytest.fixture
def postgres_url():
    return "postgresql://stand-in"

@pytest.fixture
def redis_url():
    return "redis://stand-in"

@pytest.fixture(params=["sqlite", "postgres"])
def backend(request):
    if request.param == "postgres":
        require_marker(request, "postgres")
    return request.param
"""
TESTS = """
import pytest

def test_plain(): pass
def test_model(engine): pass
def test_pg(postgres_url): pass
def test_redis(redis_url): pass
@pytest.mark.slow
def test_marked_by_hand(): pass
"""
INI = "[pytest]\nasyncio_default_fixture_loop_scope = function\nmarkers =\n    slow: s\n    postgres: p\n    redis: r\n"


@pytest.fixture
def suite(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(test_suite=TESTS)
    return pytester


def test_guard_refuses_remote_hosts() -> None:
    with socket.socket() as sock, pytest.raises(RemoteCallForbidden):
        sock.connect(("203.0.113.7", 443))
    with pytest.raises(RemoteCallForbidden):
        socket.getaddrinfo("api.openai.com", 443)


def test_guard_lets_loopback_through() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server, socket.socket() as client:
        client.connect(server.getsockname())
        assert socket.getaddrinfo("localhost", 80)


def test_guard_lets_numeric_addresses_be_looked_up_but_not_reached() -> None:
    # Code that checks where a URL points (the tools' network guard) resolves IP literals.
    for literal in ("169.254.169.254", "10.0.0.1", "2130706433", "fd00::1"):
        assert socket.getaddrinfo(literal, 80)
    with socket.socket() as sock, pytest.raises(RemoteCallForbidden):
        sock.connect(("169.254.169.254", 80))


def test_the_fast_set_leaves_out_the_model_and_the_servers(suite: pytest.Pytester) -> None:
    result = suite.runpytest_inprocess("-m", "not slow and not postgres and not redis", "-v")
    result.assert_outcomes(passed=1, deselected=4)
    result.stdout.fnmatch_lines(["*test_plain PASSED*"])


@pytest.mark.parametrize(
    ("marker", "selected"),
    [("slow", ["test_model", "test_marked_by_hand"]), ("postgres", ["test_pg"]),
     ("redis", ["test_redis"])],
)  # fmt: skip
def test_a_fixture_gives_its_marker(
    suite: pytest.Pytester, marker: str, selected: list[str]
) -> None:
    result = suite.runpytest_inprocess("-m", marker, "-v")
    result.assert_outcomes(passed=len(selected), deselected=5 - len(selected))
    result.stdout.fnmatch_lines([f"*{name} PASSED*" for name in selected], consecutive=False)


def test_a_server_reached_at_run_time_needs_the_marker_on_its_parameter(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(CONFTEST)
    pytester.makeini(INI)
    pytester.makepyfile(test_backend="def test_store(backend): pass\n")
    result = pytester.runpytest_inprocess()
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*test_store?postgres? uses a postgres server but is not*"])
