"""The escapes a hostile tenant tried (issue 17), each refused by the real bubblewrap jail.

Every test first shows the thing is reachable from outside the jail (so the refusal is the
jail's doing, not a typo), then tries it from inside with an allowlisted program.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from roost.tools.isolation import detect_isolation
from roost.tools.permissions import Caller
from roost.tools.sandbox import CommandResult, Sandbox, SandboxPolicy
from roost.tools.service import WorkspacePerAgent

ISOLATION = detect_isolation()
pytestmark = pytest.mark.skipif(
    ISOLATION.jail is None, reason=f"no bubblewrap jail: {ISOLATION.jail_problem}"
)
SECRET = "roost-operator-secret-4f1c"


@pytest.fixture
def layout(tmp_path: Path) -> WorkspacePerAgent:
    return WorkspacePerAgent(tmp_path / "workspaces")


@pytest.fixture
def sandbox() -> Sandbox:
    return Sandbox(SandboxPolicy(timeout_s=30))


async def run_as(
    sandbox: Sandbox, layout: WorkspacePerAgent, tenant: str, argv: list[str]
) -> CommandResult:
    workspace = layout(Caller(tenant_id=tenant, actor="key:x", agent_id="coder"))
    return await sandbox.run(
        argv,
        workspace.root,
        workspace_root=workspace.root,
        tenant_id=tenant,
        quota_root=workspace.quota_root,
    )


def read_host_file(path: str) -> str:
    with open(path, "rb") as file:
        return file.read().decode(errors="replace")


@pytest.fixture
def server_process() -> Iterator[int]:
    """A stand-in for the server: a process holding an operator key in its environment."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"],
        stdin=subprocess.PIPE,
        env={**os.environ, "ROOST_API_KEY": SECRET},
    )
    try:
        yield process.pid
    finally:
        process.kill()
        process.wait()
        assert process.stdin is not None
        process.stdin.close()


async def test_no_process_environ_outside_the_jail_is_readable(
    sandbox: Sandbox, layout: WorkspacePerAgent, server_process: int
) -> None:
    assert SECRET in read_host_file(f"/proc/{server_process}/environ")
    script = (
        "import os\n"
        "for pid in [p for p in os.listdir('/proc') if p.isdigit()] + [str(PID)]:\n"
        "    try: print(pid, open(f'/proc/{pid}/environ', 'rb').read())\n"
        "    except OSError as e: print(pid, 'refused', type(e).__name__)\n"
    ).replace("PID", str(server_process))
    result = await run_as(sandbox, layout, "ten_a", ["python3", "-c", script])
    assert result.exit_code == 0, result.stderr
    assert SECRET not in result.stdout and "ROOST_API_KEY" not in result.stdout
    assert f"{server_process} refused" in result.stdout


async def test_etc_passwd_is_synthesized_not_the_hosts(
    sandbox: Sandbox, layout: WorkspacePerAgent
) -> None:
    result = await run_as(sandbox, layout, "ten_a", ["cat", "/etc/passwd", "/etc/group"])
    assert result.exit_code == 0, result.stderr
    assert "roost:x:1000:1000" in result.stdout
    host = read_host_file("/etc/passwd")
    host_only = [line for line in host.splitlines() if line.split(":")[0] not in result.stdout]
    assert host_only and all(line not in result.stdout for line in host_only)
    shadow = await run_as(sandbox, layout, "ten_a", ["cat", "/etc/shadow"])
    assert shadow.exit_code != 0 and "No such file" in shadow.stderr


async def test_find_from_the_root_sees_no_other_tenant(
    sandbox: Sandbox, layout: WorkspacePerAgent
) -> None:
    theirs = layout(Caller(tenant_id="ten_b", actor="key:b", agent_id="coder"))
    (theirs.root / "b-private-notes.txt").write_text("tenant b only")
    result = await run_as(sandbox, layout, "ten_a", ["find", "/", "-name", "b-private-*"])
    assert "b-private-notes.txt" not in result.stdout
    listing = await run_as(sandbox, layout, "ten_a", ["find", "/workspace", "/tmp"])
    assert "ten_b" not in listing.stdout and "b-private" not in listing.stdout
    assert str(layout.root) not in listing.stdout


async def test_make_recipes_run_inside_the_jail_too(
    sandbox: Sandbox, layout: WorkspacePerAgent
) -> None:
    workspace = layout(Caller(tenant_id="ten_a", actor="key:a", agent_id="coder"))
    (workspace.root / "Makefile").write_text(
        "all:\n\t@id -u\n\t@cat /etc/shadow || echo no-shadow\n\t@ls /root || echo no-root\n"
        "\t@touch /usr/evil || echo no-write\n"
    )
    result = await run_as(sandbox, layout, "ten_a", ["make", "-s"])
    assert result.stdout.split()[0] == "1000"
    assert "no-shadow" in result.stdout and "no-root" in result.stdout
    assert "no-write" in result.stdout and "evil" not in os.listdir("/usr")


async def tcp_listener() -> AsyncIterator[tuple[int, list[str]]]:
    accepted: list[str] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append("connection")
        writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        await server.wait_closed()


@pytest.fixture
async def listener() -> AsyncIterator[tuple[int, list[str]]]:
    async for value in tcp_listener():
        yield value


async def test_no_host_loopback_service_and_no_internet(
    sandbox: Sandbox, layout: WorkspacePerAgent, listener: tuple[int, list[str]]
) -> None:
    port, accepted = listener
    _, writer = await asyncio.open_connection("127.0.0.1", port)  # reachable from outside
    writer.close()
    script = (
        "import socket\n"
        "for host, port in (('127.0.0.1', PORT), ('1.1.1.1', 53)):\n"
        "    try: socket.create_connection((host, port), timeout=2); print('CONNECTED', host)\n"
        "    except OSError as e: print('refused', host, type(e).__name__)\n"
    ).replace("PORT", str(port))
    result = await run_as(sandbox, layout, "ten_a", ["python3", "-c", script])
    assert "CONNECTED" not in result.stdout, result.stdout
    assert "refused 127.0.0.1" in result.stdout and "refused 1.1.1.1" in result.stdout
    assert accepted == ["connection"]  # only the control connection arrived


async def test_writes_outside_the_workspace_fail_and_commands_are_never_root(
    sandbox: Sandbox, layout: WorkspacePerAgent
) -> None:
    workspace = layout(Caller(tenant_id="ten_a", actor="key:a", agent_id="coder"))
    outside = layout.root / "ten_a" / "escaped.txt"
    script = (
        "import os\n"
        "print('uid', os.getuid(), os.geteuid(), os.getgid())\n"
        f"for path in ('/usr/x', '/etc/x', '/x', '{outside}', '../escaped.txt'):\n"
        "    try: open(path, 'w').write('x'); print('WROTE', path)\n"
        "    except OSError: print('refused', path)\n"
        "open('mine.txt', 'w').write('ok')\n"
    )
    result = await run_as(sandbox, layout, "ten_a", ["python3", "-c", script])
    assert result.exit_code == 0, result.stderr
    assert "uid 1000 1000 1000" in result.stdout and "WROTE" not in result.stdout
    assert not outside.exists()
    owner = (workspace.root / "mine.txt").stat().st_uid
    assert owner != 0 and owner == (65534 if ISOLATION.is_root else os.getuid())
