"""The README's install, systemd and cron recipes, walked on a fresh folder tree (issue 11 item 21).

The recipe's absolute paths (/var/lib/digest, /usr/local/bin, /opt/digest, /etc/...) are moved
under a temp root, and `sudo`, owners and `useradd` left out (they need root and change the
machine). Creating the virtual environment and `pip install .` is replaced by a script that
runs this checkout: the same command at the same place, without a minute of installing.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")
UNIT = (REPO / "config" / "digest.service").read_text(encoding="utf-8")
SYSTEM_PATHS = ("/var/lib/digest", "/usr/local/bin", "/opt/digest", "/etc/systemd/system", "/etc/digest")


def block_after(marker: str, fence: str = "sh") -> str:
    """The first ```fence block after `marker` in the README."""
    rest = README[README.index(marker) :]
    return rest.split(f"```{fence}\n", 1)[1].split("```", 1)[0]


def rooted(text: str, root: Path) -> str:
    for path in SYSTEM_PATHS:
        text = text.replace(path, f"{root}{path}")
    return text


def install(root: Path) -> None:
    """Run the README's install block under `root`, from this checkout (as from a clone)."""
    commands = []
    for line in block_after("Install it once").splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if not line or "useradd" in line:
            continue
        if "python3 -m venv" in line:  # the environment and `pip install .`: a script running this checkout
            assert line.endswith("pip install .") and "/opt/digest/bin/pip" in line
            line = (
                f"mkdir -p /opt/digest/bin && printf '#!/bin/sh\\nPYTHONPATH={REPO} exec {sys.executable} -m digest \"$@\"\\n'"
                " > /opt/digest/bin/digest && chmod +x /opt/digest/bin/digest"
            )
        line = line.replace("sudo -u digest ", "").replace("sudo ", "").replace("-o digest -g digest ", "")
        commands.append(rooted(line, root))
    for path in ("/usr/local/bin", "/var/lib/digest"):  # made by the system and by useradd
        (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["bash", "-euc", "\n".join(commands)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**clean_env(), "DIGEST_NOW": "2026-11-27T07:00:00+00:00"},
    )
    assert result.returncode == 0, (commands, result.stdout, result.stderr)
    assert "valid, templates compile" in result.stdout  # the recipe's last line: `digest check` as the user


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_") and k != "PYTHONPATH"}


@pytest.mark.long
def test_the_cron_line_works_on_a_fresh_install_without_a_state_folder(tmp_path: Path) -> None:
    install(tmp_path)
    home = tmp_path / "var/lib/digest"
    shutil.rmtree(home / "state")  # a fresh install: nothing has run yet, the folder may well not be there
    [entry] = [line for line in block_after("Or from cron", "cron").splitlines() if line and not line.startswith("#")]
    fields = entry.split(None, 5)
    assert fields[:5] == ["0", "7", "*", "*", "*"], entry
    command = rooted(fields[5], tmp_path)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "SHELL": "/bin/sh", "DIGEST_NOW": "2026-11-27T07:00:00+00:00"}
    quiet = subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0 and quiet.stdout == "" and quiet.stderr == "", quiet  # cron mails nothing
    assert "digest daily: new edition with 1 article\n" in (home / "state" / "last-run.txt").read_text()
    assert len(list((home / "out" / "daily").glob("*.txt"))) == 1

    config = home / "config" / "digest.toml"
    config.write_text(config.read_text() + '\n[[sources]]\nname = "intranet"\ntype = "feed"\nurl = "http://10.0.0.5/feed"\n')
    failed = subprocess.run(
        ["/bin/sh", "-c", command],
        env={**env, "DIGEST_NOW": "2026-11-28T07:00:00+00:00"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 0  # `cat` succeeded: cron mails what it printed, the report
    assert "source intranet: 0 new; failed:" in failed.stdout and "10.0.0.5 is a private address" in failed.stdout


def test_the_systemd_unit_verifies_and_finds_everything_the_recipe_installed(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install -y systemd)")
    install(tmp_path)
    [copy] = [line for line in block_after("As a systemd service").splitlines() if "install -m 644 config/digest.service" in line]
    unit_path = Path(rooted(copy.split()[-1], tmp_path))
    unit_path.parent.mkdir(parents=True, exist_ok=True)
    unit_path.write_text(rooted(UNIT, tmp_path))
    verified = subprocess.run([analyze, "verify", str(unit_path)], capture_output=True, text=True, timeout=60)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "digest.service" not in verified.stdout + verified.stderr, verified.stdout + verified.stderr

    settings = dict(
        line.split("=", 1) for line in rooted(UNIT, tmp_path).splitlines() if "=" in line and not line.startswith("#")
    )
    working = Path(settings["WorkingDirectory"])
    executable = Path(settings["ExecStart"].split()[0])
    config = Path(settings["Environment"].split("=", 1)[1])
    assert working.is_dir() and config.is_file() and Path(settings["ReadWritePaths"]).is_dir()
    assert executable.is_file() and os.stat(executable).st_mode & stat.S_IXUSR
    # what the daemon would do first, as the unit starts it: load the config, whose folders exist
    checked = subprocess.run(
        [str(executable), "check"],
        cwd=working,
        capture_output=True,
        text=True,
        timeout=60,
        env={**clean_env(), "DIGEST_CONFIG": str(config)},
    )
    assert checked.returncode == 0, checked.stderr
    assert f"source seeds: files {working}/seeds" in checked.stdout
    assert f"store: {working}/state/digest.sqlite3" in checked.stdout
