"""The HTML digest email in headless Chromium at phone and desktop widths.

Skips (with the reason) where no Chromium is installed; CI installs Debian's
`chromium` package. Screenshots are kept under tests/artifacts/ (gitignored).
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from digest import pipeline
from tests.conftest import REPO
from tests.emailproject import make_config
from tests.smtpserver import smtp_server

ARTIFACTS = REPO / "tests" / "artifacts"
WIDTHS = (375, 1024)
LONG_TITLES = (
    "Parliament passes the Comprehensive Infrastructure Modernisation and Regional Connectivity Act after a record debate",
    "Pneumonoultramicroscopicsilicovolcanoconiosis-cases-reported-by-the-regional-health-authority-this-week",
)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)
# Loads the email in an iframe exactly `width` px wide for each width, side by side, then writes what it measured
# into the page.
FRAME = '<iframe data-width="{width}" style="width:{width}px;height:3000px;border:0;flex:none" srcdoc="{document}"></iframe>'
HARNESS = """<!DOCTYPE html><html style="overflow:hidden"><body style="margin:0;display:flex;align-items:flex-start;gap:10px">
{frames}
<script>
window.addEventListener("load", function () {{
  var results = {{}};
  Array.prototype.forEach.call(document.querySelectorAll("iframe"), function (frame) {{
    var view = frame.contentWindow;
    var titles = Array.prototype.map.call(view.document.querySelectorAll("h3"), function (node) {{
      var box = node.getBoundingClientRect(), style = view.getComputedStyle(node);
      return {{text: node.textContent.trim(), left: box.left, right: box.right, height: box.height,
               shown: style.display !== "none" && style.visibility !== "hidden"}};
    }});
    results[frame.getAttribute("data-width")] = {{
      scrollWidth: view.document.documentElement.scrollWidth, innerWidth: view.innerWidth, titles: titles}};
  }});
  document.body.setAttribute("data-result", JSON.stringify(results));
}});
</script></body></html>"""


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    pytest.skip("no Chromium installed (Debian: apt-get install -y chromium); the browser check needs it")


def run_chromium(binary: str, profile: Path, *arguments: str) -> str:
    command = [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
    result = subprocess.run(command, capture_output=True, text=True, timeout=90)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.fixture(scope="module")
def email_html(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The HTML part of a real digest email, as an SMTP server received it."""
    root = tmp_path_factory.mktemp("browser")
    with smtp_server() as server:
        config = make_config(root, server.port, recipients=("ann@example.com",))
        # the articles differ by a number only: grouped by story they would be one entry
        config = replace(config, digests=tuple(replace(digest, group_stories=False) for digest in config.digests))
        for number, title in enumerate(LONG_TITLES):
            (root / "articles" / f"long{number}.txt").write_text(
                f"{title}\n\nLawmakers argued through the night over item {number}. The vote passed narrowly. Reaction was mixed across the region.\n",
                encoding="utf-8",
            )
        pipeline.run(config, datetime(2026, 11, 27, 7, tzinfo=timezone.utc))
    [received] = server.accepted
    return str(received.message.get_body(("html",)).get_content())


@pytest.fixture(scope="module")
def measured(email_html: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the harness measured of the email at each width (keyed by the width as text): one browser for both,
    its screenshot (the widths side by side) kept in tests/artifacts/."""
    binary = chromium()
    ARTIFACTS.mkdir(exist_ok=True)
    folder = tmp_path_factory.mktemp("email-browser")
    harness = folder / "harness.html"
    document = html.escape(email_html, quote=True)
    harness.write_text(
        HARNESS.format(frames="\n".join(FRAME.format(width=width, document=document) for width in WIDTHS)), encoding="utf-8"
    )
    shot = ARTIFACTS / "email.png"
    dom = run_chromium(
        binary,
        folder / "profile",
        f"--window-size={sum(width + 10 for width in WIDTHS)},2000",
        f"--screenshot={shot}",
        "--virtual-time-budget=5000",
        "--dump-dom",
        harness.as_uri(),
    )
    assert shot.stat().st_size > 1000
    found = re.search(r'data-result="([^"]*)"', dom)
    assert found, "the measuring script did not run"
    results: dict[str, Any] = json.loads(html.unescape(found.group(1)))
    return results


@pytest.mark.parametrize("width", WIDTHS)
def test_email_html_has_no_horizontal_scroll_and_shows_every_title(width: int, measured: dict[str, Any]) -> None:
    result = measured[str(width)]
    assert result["innerWidth"] == width
    assert result["scrollWidth"] <= width, f"horizontal scroll at {width}px: content is {result['scrollWidth']}px wide"
    shown = {title["text"]: title for title in result["titles"]}
    expected = (
        [t for t in LONG_TITLES]
        + [t for t in shown if "Markets calm" in t]
        + ["Harbour bridge reopens after storm repairs", "Zürich council approves night trams"]
    )
    assert len(shown) == 5
    for text in expected:
        title = shown[text]
        assert title["shown"] and title["height"] > 0 and 0 <= title["left"] and title["right"] <= width, title
