"""The sandbox on this machine: clean env, allowlist, limits, kills, caps, and the jail."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from roost.tools.isolation import IsolationReport, detect_isolation
from roost.tools.sandbox import CommandRefused, Sandbox, SandboxPolicy

ISOLATION = detect_isolation()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


async def test_environment_is_rebuilt_from_the_allowlist(
    sandbox: Sandbox, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-leak")
    monkeypatch.setenv("ROOST_API_KEY", "roost-leak")
    result = await sandbox.run(
        ["python3", "-c", "import os; print(sorted(os.environ)); print(os.getcwd())"],
        root,
        workspace_root=root,
    )
    assert result.ok, result.stderr
    assert "sk-leak" not in result.stdout and "OPENAI_API_KEY" not in result.stdout
    assert "ROOST_API_KEY" not in result.stdout
    assert "/workspace" in result.stdout or str(root) in result.stdout


async def test_only_allowlisted_executables_run(sandbox: Sandbox, root: Path) -> None:
    with pytest.raises(CommandRefused, match="not allowed"):
        await sandbox.run(["bash", "-c", "true"], root, workspace_root=root)
    with pytest.raises(CommandRefused, match="never a shell string"):
        await sandbox.run("echo hi", root, workspace_root=root)  # type: ignore[arg-type]
    with pytest.raises(CommandRefused, match="environment variable"):
        await sandbox.run(["true"], root, workspace_root=root, env={"LD_PRELOAD": "/x.so"})


async def test_timeout_kills_the_whole_process_group(sandbox: Sandbox, root: Path) -> None:
    # A child that outlives its parent would keep the pipe open; the group kill ends it.
    script = "import subprocess,time; subprocess.Popen(['sleep','60']); time.sleep(60)"
    started = time.monotonic()
    result = await sandbox.run(
        ["python3", "-c", script],
        root,
        workspace_root=root,
        policy=sandbox.policy.narrowed(timeout_s=1, allowed_executables=frozenset({"python3"})),
    )
    assert result.timed_out and result.signal == "SIGKILL"
    assert time.monotonic() - started < 10


async def test_infinite_output_is_capped_and_killed(sandbox: Sandbox, root: Path) -> None:
    policy = sandbox.policy.narrowed(max_output_bytes=1000, kill_after_output_bytes=200_000)
    result = await sandbox.run(
        ["python3", "-c", "while True: print('y' * 1000)"], root, workspace_root=root, policy=policy
    )
    assert result.output_limit_exceeded and not result.ok
    assert len(result.stdout) <= 1000 and result.stdout_truncated


async def test_memory_hog_fails_under_the_address_space_limit(sandbox: Sandbox, root: Path) -> None:
    policy = sandbox.policy.narrowed(memory_bytes=256 * 1024 * 1024)
    result = await sandbox.run(
        ["python3", "-c", "x = bytearray(2 << 30)"], root, workspace_root=root, policy=policy
    )
    assert result.exit_code != 0 and "MemoryError" in result.stderr


async def test_fork_bomb_is_contained(sandbox: Sandbox, root: Path) -> None:
    assert ISOLATION.pids_cgroup_root or not ISOLATION.is_root, ISOLATION.warnings
    bomb = "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass"
    policy = sandbox.policy.narrowed(timeout_s=2, max_processes=16)
    result = await sandbox.run(["python3", "-c", bomb], root, workspace_root=root, policy=policy)
    assert result.timed_out
    # Nothing of the bomb survives the run.
    survivors = [
        p
        for p in os.listdir("/proc")
        if p.isdigit() and _cmdline(p).startswith("python3\x00-c\x00import os")
    ]
    assert survivors == []


def _cmdline(pid: str) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


async def test_cpu_limit_stops_busy_loops(sandbox: Sandbox, root: Path) -> None:
    policy = sandbox.policy.narrowed(cpu_seconds=1, timeout_s=20)
    result = await sandbox.run(
        ["python3", "-c", "while True: pass"], root, workspace_root=root, policy=policy
    )
    assert result.signal in ("SIGXCPU", "SIGKILL") and not result.timed_out


async def test_every_resource_limit_reaches_the_command_soft_and_hard(
    sandbox: Sandbox, root: Path
) -> None:
    """The shell in front of the jail sets them with ``ulimit``: KiB and 512-byte blocks
    are rounded down, never up, and a command cannot raise its own hard limits."""
    policy = sandbox.policy.narrowed(
        cpu_seconds=7, memory_bytes=300 * 1024 * 1024 + 1000, max_file_bytes=10_000,
        max_open_files=64,
    )  # fmt: skip
    probe = (
        "import resource as r\n"
        "for n in ('CPU', 'AS', 'FSIZE', 'NOFILE', 'CORE'):\n"
        "    print(n, *r.getrlimit(getattr(r, 'RLIMIT_' + n)))\n"
        "try:\n"
        "    r.setrlimit(r.RLIMIT_NOFILE, (64, 100000))\n"
        "    print('raised')\n"
        "except ValueError:\n"
        "    print('refused')\n"
    )
    result = await sandbox.run(["python3", "-c", probe], root, workspace_root=root, policy=policy)
    assert result.ok, result.stderr
    limits = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert limits == {
        "CPU": "7 7",
        "AS": f"{300 * 1024 * 1024} {300 * 1024 * 1024}",  # whole KiB
        "FSIZE": "9728 9728",  # 19 blocks of 512 bytes: not more than 10,000
        "NOFILE": "64 64",
        "CORE": "0 0",
    }
    assert result.stdout.splitlines()[-1] == "refused"


async def test_working_directory_must_be_inside_the_workspace(
    sandbox: Sandbox, root: Path, tmp_path: Path
) -> None:
    with pytest.raises(CommandRefused, match="outside the workspace"):
        await sandbox.run(["true"], tmp_path, workspace_root=root)


async def test_jail_has_read_only_system_private_tmp_and_no_network(
    sandbox: Sandbox, root: Path
) -> None:
    assert ISOLATION.bwrap_path, "install bubblewrap (make test-services)"
    script = (
        "import os, socket\n"
        "open('made-here.txt','w').write('ok')\n"
        "for path in ('/usr/roost-test', '/etc/roost-test'):\n"
        "    try:\n        open(path, 'w'); print('WROTE', path)\n"
        "    except OSError: print('refused', path)\n"
        "print('shadow', os.path.exists('/etc/shadow'))\n"
        "print('home', os.path.exists('/root'))\n"
        "try:\n    socket.create_connection(('1.1.1.1', 53), timeout=2); print('NET')\n"
        "except OSError: print('no network')\n"
    )
    result = await sandbox.run(["python3", "-c", script], root, workspace_root=root)
    assert result.isolation == "bubblewrap"
    assert "WROTE" not in result.stdout and "NET" not in result.stdout
    assert "shadow False" in result.stdout and "home False" in result.stdout
    assert "no network" in result.stdout
    assert (root / "made-here.txt").read_text() == "ok"


NO_JAIL = IsolationReport(
    None, ISOLATION.pids_cgroup_root, ISOLATION.is_root, jail_problem="bwrap is not installed"
)


async def test_without_a_jail_every_command_is_refused_naming_the_fix(root: Path) -> None:
    sandbox = Sandbox(SandboxPolicy(timeout_s=5), NO_JAIL)
    for argv in (["true"], ["python3", "-c", "print(1)"], ["find", "/"], ["make"]):
        with pytest.raises(CommandRefused, match="no working bubblewrap jail") as refused:
            await sandbox.run(argv, root, workspace_root=root)
        assert "apt-get install bubblewrap" in str(refused.value)
        assert "allow_unjailed_commands" in str(refused.value)
    assert os.listdir(root) == []


async def test_network_for_commands_is_refused_not_silently_granted(
    sandbox: Sandbox, root: Path
) -> None:
    with pytest.raises(CommandRefused, match="no host is granted"):
        await sandbox.run(
            ["true"], root, workspace_root=root, policy=sandbox.policy.narrowed(network=True)
        )


async def test_an_operator_may_opt_into_unjailed_commands_and_the_rest_still_holds(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-leak")
    sandbox = Sandbox(SandboxPolicy(timeout_s=1, allow_unjailed=True), NO_JAIL)
    shown = await sandbox.run(
        ["python3", "-c", "import os; print(os.getcwd(), sorted(os.environ))"],
        root,
        workspace_root=root,
    )
    assert shown.isolation == "unjailed" and shown.ok
    assert str(root) in shown.stdout and "OPENAI_API_KEY" not in shown.stdout
    hung = await sandbox.run(["python3", "-c", "import time; time.sleep(60)"], root,
                             workspace_root=root)  # fmt: skip
    assert hung.timed_out and hung.signal == "SIGKILL"


def test_doctor_warns_loudly_without_bubblewrap(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from roost.cli.main import app
    from roost.tools import isolation

    bare = IsolationReport(
        None, None, True, ("no working bubblewrap jail (...): commands are REFUSED",), "missing"
    )
    # `roost doctor` imports detect_isolation when it runs, so patch it at its source.
    monkeypatch.setattr(isolation, "detect_isolation", lambda *_: bare)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "refused" in result.output and "missing" in result.output
    assert "WARNING" in result.output and "commands are REFUSED" in result.output
    assert "root ignores RLIMIT_NPROC" in result.output
