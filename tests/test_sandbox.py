"""The sandbox every graded notebook runs in (labs/grading/sandbox.py): each denial is proven by a
notebook that tries it, and the same notebook run with `unsafe=True` shows the denial
comes from the sandbox (not from the machine)."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest

from labs import ROOT
from labs.grading import sandbox

FAST = sandbox.Limits(cell_seconds=30, notebook_seconds=60, memory_mb=2048, processes=128)


def run(*cells: str, limits: sandbox.Limits = FAST) -> sandbox.Run:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return sandbox.run_notebook(nb, limits)


def text(result: sandbox.Run, index: int) -> str:
    return "".join(o.get("text", "") for o in result.outputs.get(index, []) if o.get("output_type") == "stream")


def facts(result: sandbox.Run, index: int = 0) -> dict:
    return json.loads(text(result, index).strip().splitlines()[-1])


PEEK = f"""
import json, os
course = {str(ROOT)!r}
seen = {{
    "root": sorted(os.listdir("/")),
    "course_listing": sorted(os.listdir(course)) if os.path.isdir(course) else None,
    "source_readable": os.path.exists(os.path.join(course, "source")),
    "gradebook": os.path.exists(os.path.join(course, "gradebook.db")),
    "home_listing": sorted(os.listdir(os.path.expanduser("~"))),
    "env": sorted(os.environ),
    "env_mentions_course": [k for k, v in os.environ.items() if course in v and ".venv" not in v],
    "uid": os.getuid(),
    "pid": os.getpid(),
}}
print(json.dumps(seen))
"""


@pytest.fixture(scope="module", autouse=True)
def _sandbox_available():
    sandbox.check(FAST)  # a machine without bubblewrap or cgroups fails here, loudly (CI installs bubblewrap)


def test_no_view_of_the_course_nor_the_grader_environment(monkeypatch):
    monkeypatch.setenv("LAB_DB_URL", "postgresql+psycopg2://grader:secret@db/course")  # the gradebook's credentials
    monkeypatch.setenv("LAB_REFERENCE_CACHE", str(ROOT / ".lab-grader" / "reference"))  # the solution's probe data
    seen = facts(run(PEEK))
    assert seen["course_listing"] == [".venv"], seen["course_listing"]   # only the read-only venv
    assert not seen["source_readable"] and not seen["gradebook"]
    assert seen["env_mentions_course"] == [], seen["env"]
    assert not {"PYTHONPATH", "LAB_GRADE_UNSAFE", "LAB_DB_URL", "LAB_REFERENCE_CACHE"} & set(seen["env"]), seen["env"]
    assert seen["uid"] == 65534
    assert seen["pid"] < 20, "its own PID namespace: the kernel is one of a handful of processes"
    unsafe = facts(run(PEEK, limits=sandbox.Limits(cell_seconds=30, notebook_seconds=60, unsafe=True)))
    assert unsafe["source_readable"], "without the sandbox the same code sees the course (so the denial is real)"


def test_no_network():
    received: list[bytes] = []
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:  # closed: the test is over
                return
            received.append(conn.recv(1 << 16) or b"connected")
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        result = run(f"""
import socket
for host in ("127.0.0.1", "localhost", "8.8.8.8"):
    try:
        socket.create_connection((host, {port}), timeout=2).sendall(b"the source notebook")
        print(host, "connected")
    except OSError as err:
        print(host, type(err).__name__)
""")
        out = text(result, 0)
        assert "connected" not in out, out
        assert "127.0.0.1 ConnectionRefusedError" in out
        assert received == []
        unsafe = run(f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'x')",
                     limits=sandbox.Limits(cell_seconds=30, notebook_seconds=60, unsafe=True))
        assert unsafe.statuses[0] == "ok" and received, "without the sandbox the listener is reachable"
    finally:
        stop.set()
        server.close()


def test_writes_land_nowhere_outside(tmp_path):
    name = f"planted-{uuid.uuid4().hex[:8]}.py"
    targets = [ROOT / name, ROOT / ".venv" / name, Path("/tmp") / name, tmp_path / name]
    result = run(f"""
for path in {[str(t) for t in targets]!r} + ["{name}"]:
    try:
        open(path, "w").write("import torch")
        print(path, "written")
    except OSError as err:
        print(path, type(err).__name__)
""")
    out = text(result, 0)
    assert f"{name} written" in out, "the private work folder is writable"
    for target in targets:
        assert not target.exists(), f"{target} was written from the sandbox"


def test_a_poisoned_font_list_stays_in_its_own_sandbox():
    """Each sandbox gets a copy of the grader's matplotlib font list: a submission that rewrites its
    copy (a planted file aimed at the next student) changes nothing the next sandbox or the grader sees."""
    trusted = sandbox._font_cache()
    assert trusted is not None and trusted.is_file()
    before = trusted.read_bytes()
    poison = run("""
import glob, os
config = os.environ["MPLCONFIGDIR"]
for path in glob.glob(os.path.join(config, "fontlist-*.json")):
    open(path, "w").write('{"poisoned": true}')
open(os.path.join(config, "matplotlibrc"), "w").write("backend: agg\\n")
print(sorted(os.listdir(config)))
""")
    assert "matplotlibrc" in text(poison, 0), text(poison, 0)
    assert trusted.read_bytes() == before and not (trusted.parent / "matplotlibrc").exists()
    nxt = run("""
import glob, json, os
config = os.environ["MPLCONFIGDIR"]
lists = [json.load(open(p)) for p in glob.glob(os.path.join(config, "fontlist-*.json"))]
print(json.dumps({"listing": sorted(os.listdir(config)), "poisoned": any("poisoned" in d for d in lists),
                  "fonts": sum(len(d.get("ttflist", [])) for d in lists)}))
""")
    seen = facts(nxt)
    assert seen["listing"] == [trusted.name] and not seen["poisoned"] and seen["fonts"] > 0, seen


def test_every_process_dies_with_the_sandbox():
    marker = f"lab-test-stray-{uuid.uuid4().hex[:8]}"
    result = run(f"""
import os, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", "{marker}"], start_new_session=True)
if os.fork() == 0:          # a double-forked daemon as well
    os.setsid()
    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", "{marker}"])
print("spawned")
""")
    assert "spawned" in text(result, 0)
    time.sleep(0.5)
    left = [p for p in psutil.process_iter(["cmdline"]) if marker in " ".join(p.info["cmdline"] or [])]
    assert left == [], f"processes outlived the sandbox: {left}"


def test_memory_is_bounded_for_all_processes_together():
    result = run("""
import multiprocessing as mp, time
def hog(mb):
    block = bytearray(mb << 20)
    for i in range(0, len(block), 4096):
        block[i] = 1
    time.sleep(20)
children = [mp.get_context("fork").Process(target=hog, args=(400,)) for _ in range(8)]
for c in children:
    c.start()
for c in children:
    c.join(25)
print("exit codes", [c.exitcode for c in children])
""", limits=sandbox.Limits(cell_seconds=40, notebook_seconds=60, memory_mb=1024, processes=128))
    assert any("memory bound" in e for e in result.events), result.events
    assert "-9" in text(result, 0), "the cgroup's OOM killer stopped some of the children"


def test_process_count_is_bounded():
    result = run("""
import os, time
made = 0
try:
    for _ in range(200):
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        made += 1
except OSError as err:
    print("stopped", type(err).__name__, made)
""", limits=sandbox.Limits(cell_seconds=30, notebook_seconds=60, processes=40))
    assert "stopped BlockingIOError" in text(result, 0), text(result, 0)


def test_wall_clock_budget_and_the_grader_never_waits():
    started = time.monotonic()
    result = run("import time\ntime.sleep(100)", "print('never')",
                 limits=sandbox.Limits(cell_seconds=120, notebook_seconds=8))
    assert time.monotonic() - started < 30
    assert any("wall-clock budget" in e for e in result.events)
    assert 1 not in result.statuses


def test_cell_timeout_and_kernel_death_are_statuses():
    result = run("import time\ntime.sleep(30)", "print('after')", "import os\nos._exit(3)", "print('gone')",
                 limits=sandbox.Limits(cell_seconds=3, notebook_seconds=60))
    assert result.statuses[0] == "timeout" and result.statuses[1] == "ok"
    assert result.statuses[2] == "died" and 3 not in result.statuses


def test_output_is_capped_in_bytes():
    limits = sandbox.Limits(cell_seconds=30, notebook_seconds=60, cell_output_bytes=64 * 1024)
    result = run("print('x' * 20_000_000)", "print('still here')", limits=limits)
    assert len(json.dumps(result.outputs[0])) < 2 * limits.cell_output_bytes
    assert "still here" in text(result, 1)


def test_a_missing_sandbox_stops_grading(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(sandbox.SandboxUnavailable, match="bubblewrap"):
        sandbox.check(FAST)


def test_torch_compile_runs_eagerly():
    """Graded runs never build native code through Inductor: torch.compile gives the eager values
    and compiles no graph (a show-only compile cell took about 18 s per notebook)."""
    result = run("import json, torch, torch._dynamo\n"
                 "f = lambda x: torch.sin(x) * 2\n"
                 "g = torch.compile(f)\n"
                 "x = torch.linspace(-3, 3, 7)\n"
                 "same = bool(torch.equal(g(x), f(x)))\n"
                 "graphs = torch._dynamo.utils.counters['stats']['unique_graphs']\n"
                 "print(json.dumps({'same': same, 'graphs': graphs, 'disabled': torch._dynamo.config.disable}))")
    assert result.statuses.get(0) == "ok", result.errors
    assert facts(result) == {"same": True, "graphs": 0, "disabled": True}
