"""The archive's pages in headless Chromium at phone (375 px) and desktop (1,200 px) widths: no
horizontal scroll, every edition link on screen, no console messages; screenshots are kept in
tests/artifacts/ (gitignored). Skips where Chromium is not installed.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Project
from tests.test_email_browser import chromium
from tests.inprocess import invoke

# One xdist worker runs all six pages (with --dist loadgroup, the default): archive_folder, three CLI runs, is made
# once, and one browser a width measures the three pages.
pytestmark = pytest.mark.xdist_group("archive_browser")

ARTIFACTS = REPO / "tests" / "artifacts"
WIDTHS = (375, 1200)
LONG_TITLE = (
    "Pneumonoultramicroscopicsilicovolcanoconiosis-cases-reported-by-the-regional-health-authority-"
    "this-week-after-the-long-and-unusually-dusty-autumn"
)
PAGES = {"index": "index.html", "month": "months/2026-11.html", "edition": "editions/2026-11-29T070000Z.html"}
# Loads each page in an iframe exactly `width` px wide, side by side, then writes what it measured into the harness.
FRAME = '<iframe data-kind="{kind}" style="width:{width}px;height:2500px;border:0;flex:none" src="{page}"></iframe>'
HARNESS = """<!DOCTYPE html><html style="overflow:hidden"><body style="margin:0;display:flex;align-items:flex-start;gap:10px">
{frames}
<script>
window.addEventListener("load", function () {{
  var results = {{}};
  Array.prototype.forEach.call(document.querySelectorAll("iframe"), function (frame) {{
    var view = frame.contentWindow, width = view.innerWidth;
    var links = Array.prototype.map.call(view.document.querySelectorAll("a, h1, h2, h3, li"), function (node) {{
      var box = node.getBoundingClientRect();
      return {{text: node.textContent.trim().slice(0, 60), left: box.left, right: box.right}};
    }});
    results[frame.getAttribute("data-kind")] = {{
      scrollWidth: view.document.documentElement.scrollWidth, innerWidth: width,
      fontSize: parseFloat(view.getComputedStyle(view.document.body).fontSize),
      outside: links.filter(function (b) {{ return b.left < 0 || b.right > width + 0.5; }}), count: links.length}};
  }});
  document.body.setAttribute("data-result", JSON.stringify(results));
}});
</script></body></html>"""


@pytest.fixture(scope="module")
def archive_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An archive of three editions made by `digest run` (in process), one with a very long unbroken title."""
    import shutil

    root = tmp_path_factory.mktemp("archive-browser")
    shutil.copytree(REPO / "config", root / "config")
    shutil.copytree(REPO / "seeds", root / "seeds")
    project = Project(root)
    for day in ("27", "28", "29"):
        title = LONG_TITLE if day == "29" else f"Harbour works reach stage {day}"
        (root / "seeds" / f"stage-{day}.txt").write_text(
            f"{title}\n\nCrews finished stage {day} of the harbour works. The council said the quay reopens in "
            "spring. Residents welcomed the quieter nights.\n",
            encoding="utf-8",
        )
        result = invoke(project, "run", now=f"2026-11-{day}T07:00:00+00:00")
        assert result.returncode == 0, result.stdout + result.stderr
    return project.out / "daily"


@pytest.fixture(scope="module")
def measured(archive_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[int], tuple[dict[str, Any], str]]:
    """What the harness measured of every page at one width, and Chromium's log: one browser a width, its
    screenshot (the pages side by side) kept in tests/artifacts/."""
    found: dict[int, tuple[dict[str, Any], str]] = {}

    def measure(width: int) -> tuple[dict[str, Any], str]:
        if width not in found:
            binary = chromium()
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / f"archive-{width}.png"
            frames = "\n".join(
                FRAME.format(kind=kind, width=width, page=html.escape(page)) for kind, page in sorted(PAGES.items())
            )
            harness = archive_folder / f"harness-{width}.html"  # beside the pages: file:// frames it may read
            harness.write_text(HARNESS.format(frames=frames), encoding="utf-8")
            try:
                dom, log = run_chromium_logged(
                    binary,
                    tmp_path_factory.mktemp("profile"),
                    harness.as_uri(),
                    f"--window-size={len(PAGES) * (width + 10)},1600",
                    f"--screenshot={shot}",
                )
            finally:
                harness.unlink()
            assert shot.stat().st_size > 1000
            result = re.search(r'data-result="([^"]*)"', dom)
            assert result, "the measuring script did not run"
            found[width] = json.loads(html.unescape(result.group(1))), log
        return found[width]

    return measure


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kind", sorted(PAGES))
def test_archive_pages_fit_phone_and_desktop_without_console_errors(
    kind: str, width: int, measured: Callable[[int], tuple[dict[str, Any], str]]
) -> None:
    results, log = measured(width)
    result = results[kind]
    assert result["innerWidth"] == width
    assert result["scrollWidth"] <= width, f"horizontal scroll at {width}px: content is {result['scrollWidth']}px wide"
    assert result["count"] >= 3 and result["outside"] == []
    assert result["fontSize"] >= 16  # readable on a phone without zooming
    console = [line for line in log.splitlines() if ":CONSOLE" in line and "harness" not in line]
    # a message names the page it came from: this page's, and any from none of the pages
    console = [line for line in console if PAGES[kind] in line or not any(page in line for page in PAGES.values())]
    assert console == []


def run_chromium_logged(binary: str, profile: Path, url: str, *arguments: str) -> tuple[str, str]:
    """The DOM after scripts ran, and Chromium's log, where every console message of the page shows."""
    import subprocess

    from tests.test_email_browser import CHROMIUM_FLAGS

    command = [
        binary,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        "--allow-file-access-from-files",
        "--enable-logging=stderr",
        "--v=0",
        *arguments,
        "--virtual-time-budget=5000",
        "--dump-dom",
        url,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, result.stderr
