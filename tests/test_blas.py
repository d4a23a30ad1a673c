"""One BLAS thread per process: the CLI sets it before numpy loads, and spawned workers inherit it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The real CLI summarising a document, then (at exit) the thread count of each BLAS library numpy loaded.
SCRIPT = """
import atexit, json, sys
from threadpoolctl import threadpool_info
atexit.register(lambda: print(json.dumps([pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]), file=sys.stderr))
from digest.cli import main
sys.argv = ["digest", "summarize", "--algorithm", "lexrank", "-"]
main()
"""
TEXT = " ".join(f"Sentence number {n} talks about the council budget and the new bridge over the river." for n in range(40))


def blas_threads(env_extra: dict[str, str]) -> list[int]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS") and not k.startswith("DIGEST_")}
    env.update(PYTHONPATH=str(REPO), **env_extra)
    result = subprocess.run([sys.executable, "-c", SCRIPT], input=TEXT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return [int(n) for n in result.stderr.strip().splitlines()[-1].strip("[]").split(",") if n.strip()]


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: BLAS uses one thread anyway")
def test_the_cli_gives_numpy_one_blas_thread_unless_the_user_asks_for_more() -> None:
    assert blas_threads({}) == [1]
    assert blas_threads({"OPENBLAS_NUM_THREADS": "2", "OMP_NUM_THREADS": "2"}) == [2]  # a value the user set is kept
