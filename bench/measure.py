"""Run a command and measure it: wall time, CPU time and memory of its whole process tree.

Memory is read three ways: the largest single process (wait4's ru_maxrss, which
covers every descendant reaped before the command ended), and the peak of the
tree's summed RSS and summed PSS, sampled from /proc every 50 ms. Summed RSS
counts pages shared between processes once per process; PSS splits them fairly.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.05


@dataclass(frozen=True)
class Measured:
    """What one run of a command cost."""

    returncode: int
    wall: float  # seconds
    cpu: float  # user + system seconds, the process and its reaped children
    max_process_mb: float  # largest single process (ru_maxrss)
    tree_rss_mb: float  # peak of summed RSS over the tree (sampled)
    tree_pss_mb: float  # peak of summed PSS over the tree (sampled)
    stdout: str
    stderr: str


def descendants(pid: int) -> list[int]:
    """The process and every live descendant, from /proc/<pid>/task/<tid>/children."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        try:
            for task in os.listdir(f"/proc/{current}/task"):
                children = Path(f"/proc/{current}/task/{task}/children").read_text().split()
                queue.extend(int(child) for child in children)
        except OSError:
            continue
    return found


def _kilobytes(path: str, field: str) -> int:
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_memory(pid: int) -> tuple[int, int]:
    """(summed RSS, summed PSS) of the tree, in kB."""
    pids = descendants(pid)
    rss = sum(_kilobytes(f"/proc/{p}/status", "VmRSS:") for p in pids)
    pss = sum(_kilobytes(f"/proc/{p}/smaps_rollup", "Pss:") for p in pids)
    return rss, pss


def measure(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 3600) -> Measured:
    """Run `command` to its end and measure it."""
    out_path, err_path = cwd / ".bench-stdout", cwd / ".bench-stderr"
    peak = [0, 0]
    with out_path.open("w") as out, err_path.open("w") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=err)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                rss, pss = tree_memory(process.pid)
                peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
                done.wait(SAMPLE_SECONDS)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
            time.sleep(0.005)
        wall = time.perf_counter() - started
        done.set()
        sampler.join()
        process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        returncode=process.returncode,
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        max_process_mb=usage.ru_maxrss / 1024,
        tree_rss_mb=peak[0] / 1024,
        tree_pss_mb=peak[1] / 1024,
        stdout=out_path.read_text(),
        stderr=err_path.read_text(),
    )
