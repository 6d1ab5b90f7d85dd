"""cnndsl/memory.py: how much memory a new allocation may take here, the machine's or less where a
container's cgroup limit or ulimit -v says so."""

from __future__ import annotations

import subprocess
import sys

import pytest
from helpers import ROOT

from cnndsl import memory


def test_the_least_known_limit_wins(monkeypatch):
    monkeypatch.setattr(memory, "_meminfo", lambda: 24 << 30)
    monkeypatch.setattr(memory, "_cgroup_room", lambda: 2 << 30)
    monkeypatch.setattr(memory, "_address_space_room", lambda: None)
    assert memory.available_memory() == 2 << 30
    monkeypatch.setattr(memory, "_cgroup_room", lambda: None)
    assert memory.available_memory() == 24 << 30
    monkeypatch.setattr(memory, "_meminfo", lambda: None)
    assert memory.available_memory() is None


def test_a_cgroup_limit_is_read_from_this_process_cgroup(tmp_path, monkeypatch):
    cg = tmp_path / "sys" / "fs" / "cgroup" / "box"
    cg.mkdir(parents=True)
    (cg / "memory.max").write_text("3000000000\n")
    (cg / "memory.current").write_text("1000000000\n")
    files = {"/proc/self/cgroup": "0::/box\n", "/sys/fs/cgroup/box/memory.max": (cg / "memory.max").read_text(),
             "/sys/fs/cgroup/box/memory.current": (cg / "memory.current").read_text()}
    real_open = open

    def fake_open(path, *args, **kwargs):
        if path in files:
            from io import StringIO
            return StringIO(files[path])
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    assert memory._cgroup_room() == 2_000_000_000
    files["/sys/fs/cgroup/box/memory.max"] = "max\n"
    assert memory._cgroup_room() is None


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS and /proc/self/statm are Linux's")
def test_ulimit_v_is_a_limit():
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY)); "
            "from cnndsl.memory import available_memory; print(available_memory())")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert 0 < int(out.stdout) < 3 << 30
