"""The CLI run inside the test process with click's CliRunner, for tests that only check a command's
output, exit code and files. It skips the interpreter start-up and the imports (numpy, the summariser)
that a subprocess pays on every call; the real CLI in a subprocess stays for the end-to-end proofs
(conftest's `run_cli` and `Project.cli`), which also prove what only a process shows: signals,
locks held by another process, the interpreter's own exit.

The result has the fields tests read from `subprocess.CompletedProcess`: returncode, stdout, stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

from conftest import Project

from digest.cli import main


def run_in_process(
    *args: str,
    cwd: Path,
    now: str | None = None,
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`digest ARGS` in this process, in folder `cwd`, with the environment a subprocess would get
    from conftest's `run_cli`: no inherited DIGEST_* variable, $DIGEST_NOW set to `now`."""
    environment: dict[str, str | None] = {name: None for name in os.environ if name.startswith("DIGEST_")}
    if now:
        environment["DIGEST_NOW"] = now
    environment.update(env or {})
    root = logging.getLogger()
    # The CLI configures logging with basicConfig, which does nothing while pytest's handlers are on the
    # root logger: take them off for the call so its warnings reach its stderr, as in a process of its own.
    handlers, level = root.handlers[:], root.level
    saved_environment = dict(os.environ)  # the CLI sets the BLAS thread variables for its process
    for handler in handlers:
        root.removeHandler(handler)
    try:
        with contextlib.chdir(cwd):
            result = CliRunner().invoke(main, list(args), input=stdin, env=environment, catch_exceptions=False)
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        os.environ.clear()
        os.environ.update(saved_environment)
    return subprocess.CompletedProcess(["digest", *args], result.exit_code, result.stdout, result.stderr)


def invoke(
    project: Project,
    *args: str,
    now: str | None = "2026-11-27T07:00:00+00:00",
    stdin: str | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`digest --config <project config> ARGS` in this process, as `project.cli` runs it in a subprocess."""
    return run_in_process("--config", str(project.config), *args, cwd=project.root, now=now, stdin=stdin, env=env)
