"""`slmc sweep` on Ray, as users run it (subprocesses): the issue's test sweep (stories260K x {q8, int8} x
{cortex-m33, rv32imac} x {fp32, fp16} KV cache; -q int8 refuses --kv-cache, so 4 points end in their
one-line error and the sweep goes on) on the local default and on a two-node cluster started here with
`ray start`, with the same results.parquet; a re-run computes nothing; a killed worker's point is retried.

Ray resolves a loopback --node-ip-address to the machine's own address for a multi-node cluster
(ray._private.services.resolve_ip_for_localhost), so the test cluster listens on this machine's address;
it takes only clients holding the random token made here (RAY_AUTH_MODE=token) and lives for this module.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from conftest import run_slmc, shared_path

pa = pytest.importorskip("pyarrow")
import pyarrow.parquet as pq  # noqa: E402

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).with_name("ray"))


def _spec(tmp: Path, model: Path, steps: int = 2) -> Path:
    spec = tmp / "sweep.toml"
    spec.write_text(f'models = ["{model}"]\ntargets = ["cortex-m33", "rv32imac"]\nsteps = {steps}\ntimeout_s = 300\n'
                    '[grid]\nnumerics = ["q8", "int8"]\nkv_cache = ["fp32", "fp16"]\n')
    return spec


def _summary(r) -> dict:
    import json

    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def _local_env() -> dict:
    return {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}


@pytest.fixture(scope="module")
def model() -> Path:
    return shared_path("models/stories260K/stories260K.bin")


@pytest.fixture(scope="module")
def local_run(model, tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("local")
    r = subprocess.run([sys.executable, "-m", "slmc.cli", "sweep", str(_spec(tmp, model)), "-o", str(tmp / "out"),
                        "--json", "--workers", "2"], capture_output=True, text=True, env=_local_env(), timeout=400)
    assert _summary(r) == dict(points=8, computed=8, cached=0, failed=4)
    return tmp


def test_local_sweep_results(local_run):
    rows = pq.read_table(local_run / "out" / "results.parquet").to_pylist()
    assert [(r["target"], r["numerics"], r["kv_cache"]) for r in rows][:2] == [("cortex-m33", "q8", "fp32"),
                                                                               ("cortex-m33", "q8", "fp16")]
    for r in rows:
        if r["numerics"] == "int8":
            assert "omit --kv-cache with -q int8" in r["status"] and r["instructions_per_token"] is None
        else:
            assert r["status"] == "ok" and r["kv_cache_used"] == r["kv_cache"]
            assert r["instructions_per_token"] > 1e5 and r["est_uj_per_token"] > 0 and r["positions"] == 2
    fp16 = [r["sram_bytes"] for r in rows if r["kv_cache"] == "fp16" and r["status"] == "ok"]
    fp32 = [r["sram_bytes"] for r in rows if r["kv_cache"] == "fp32" and r["status"] == "ok"]
    assert all(a < b for a, b in zip(fp16, fp32))  # half the KV cache
    assert (local_run / "out" / "pareto.png").stat().st_size > 10_000
    assert "Pareto" in (local_run / "out" / "sweep.html").read_text()


def test_rerun_computes_nothing(local_run):
    r = run_slmc("sweep", local_run / "sweep.toml", "-o", local_run / "out", "--json", env=_local_env(), timeout=120)
    assert _summary(r) == dict(points=8, computed=0, cached=8, failed=4)
    # an extended sweep computes only its new points (steps differ: a new key)
    t = pq.read_table(local_run / "out" / "timings.parquet").to_pylist()
    assert all(x["cached"] for x in t)


def _ours(marker: str) -> set[int]:
    """Processes whose command line names `marker` (a folder of this test's), and their descendants."""
    parent: dict[int, int] = {}
    hits: set[int] = set()
    for d in os.listdir("/proc"):
        if not d.isdigit() or int(d) == os.getpid():
            continue
        try:
            parent[int(d)] = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            if marker in Path(f"/proc/{d}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                hits.add(int(d))
        except (OSError, ValueError, IndexError):
            continue
    grew = True
    while grew:
        new = {p for p, pp in parent.items() if pp in hits and p not in hits}
        hits |= new
        grew = bool(new)
    return hits


def _end(pids: set[int]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in pids:
            try:
                os.kill(p, sig)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() and
                                                  "Z" not in _state(p) for p in pids):
            time.sleep(0.2)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


@pytest.fixture(scope="module")
def cluster():
    """`ray start --head` and a second worker node (one CPU each) on this machine; ended by process id."""
    temp = tempfile.mkdtemp(prefix="slmc-ray-", dir="/tmp")  # Ray's socket paths must stay short
    env = {**_local_env(), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16),
           "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus=1", "--object-store-memory=100000000", "--disable-usage-stats"]
    try:
        head = subprocess.run([RAY, "start", "--head", f"--port={_free_port()}", "--include-dashboard=false",
                               f"--temp-dir={temp}", *common], capture_output=True, text=True, env=env, timeout=120)
        assert head.returncode == 0, head.stderr[-2000:]
        addr = re.search(r"ray start --address='([^']+)'", head.stdout + head.stderr).group(1)
        node = subprocess.run([RAY, "start", f"--address={addr}", *common], capture_output=True, text=True,
                              env=env, timeout=120)
        assert node.returncode == 0, node.stderr[-2000:]
        probe = subprocess.run([sys.executable, "-c", "import ray; ray.init(address='" + addr + "', log_to_driver=False);"
                                " print(len([n for n in ray.nodes() if n['Alive']]))"],
                               capture_output=True, text=True, env=env, timeout=120)
        assert probe.stdout.strip().splitlines()[-1] == "2", probe.stderr[-2000:]
        yield addr, env
    finally:
        _end(_ours(temp))
        shutil.rmtree(temp, ignore_errors=True)


def test_cluster_gives_the_same_parquet(local_run, cluster, tmp_path):
    addr, env = cluster
    r = run_slmc("sweep", local_run / "sweep.toml", "-o", tmp_path / "out", "--json", "--address", addr, env=env,
                 timeout=400)
    assert _summary(r) == dict(points=8, computed=8, cached=0, failed=4)
    a = pq.read_table(local_run / "out" / "results.parquet")
    b = pq.read_table(tmp_path / "out" / "results.parquet")
    assert a.equals(b)
    # RAY_ADDRESS reaches the same cluster; everything is cached now
    r = run_slmc("sweep", local_run / "sweep.toml", "-o", tmp_path / "out", "--json", env={**env, "RAY_ADDRESS": addr},
                 timeout=120)
    assert _summary(r)["cached"] == 8


def test_killed_worker_is_retried(model, tmp_path):
    """A worker killed while it runs a point: Ray runs the point again, and it completes."""
    spec = tmp_path / "kill.toml"
    spec.write_text(f'models = ["{model}"]\ntargets = ["cortex-m33"]\nsteps = 4\nretries = 2\n'
                    '[grid]\nnumerics = ["q8"]\nkv_cache = ["fp32", "fp16"]\n')
    p = subprocess.Popen([sys.executable, "-m", "slmc.cli", "sweep", str(spec), "-o", str(tmp_path / "out"), "--json",
                          "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=_local_env())
    killed = None
    try:
        deadline = time.monotonic() + 120
        while killed is None and time.monotonic() < deadline and p.poll() is None:
            for pid in _descendants(p.pid):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if cmd.startswith(b"ray::_task"):  # a worker running a point (Ray's process title)
                    time.sleep(1.0)               # inside the compile or the run
                    if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::_task"):
                        os.kill(pid, signal.SIGKILL)
                        killed = pid
                    break
            time.sleep(0.1)
        out, err = p.communicate(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
    assert killed is not None, "no worker was seen running a point"
    assert p.returncode == 0, err[-3000:]
    import json

    assert json.loads(out.strip().splitlines()[-1]) == dict(points=2, computed=2, cached=0, failed=0)
    assert all(r["status"] == "ok" for r in pq.read_table(tmp_path / "out" / "results.parquet").to_pylist())


def _descendants(root: int) -> list[int]:
    parent: dict[int, int] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                parent[int(d)] = int(Path(f"/proc/{d}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, frontier = [], {root}
    while frontier:
        kids = {p for p, pp in parent.items() if pp in frontier}
        out += sorted(kids)
        frontier = kids
    return out
