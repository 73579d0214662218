"""A page as a reader's browser lays it out: measured in headless Chromium, and the
committed screenshots under docs/img/ taken whole (``make screenshots``). No torch.

Nothing here installs a browser: without ``chromium`` on the PATH, ``find_chromium``
returns None and the browser test skips with that reason.

``python -m cliffaudit.render.browser`` re-renders the committed pages and screenshots
them at 1280 and 800 px, each as tall as its page, so no image is cut off mid-plot.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

WIDTHS = (1280, 800)

# Appended to a copy of a page only: the browser writes what it measured into the DOM.
MEASURE = """<script>
window.addEventListener("load", () => {
  const root = document.documentElement, found = {};
  found.overflow = root.scrollWidth - window.innerWidth;
  found.height = Math.ceil(root.scrollHeight);
  found.title = document.title;
  // The smallest text of each plot on screen: its font size times the scale the SVG is drawn at.
  found.smallestText = {};
  for (const plot of document.querySelectorAll(".plot")) {
    let least = Infinity;
    for (const text of plot.querySelectorAll("svg text")) {
      const m = text.getScreenCTM();
      if (!m || !text.textContent.trim()) continue;
      least = Math.min(least, parseFloat(getComputedStyle(text).fontSize) * Math.hypot(m.a, m.b));
    }
    found.smallestText[plot.id] = least;
  }
  // A plot wider than its column, or running past the window, is cut off.
  found.cutOff = [];
  for (const svg of document.querySelectorAll(".plot svg")) {
    const box = svg.getBoundingClientRect(), column = svg.parentElement.getBoundingClientRect();
    if (box.right > window.innerWidth + 0.5 || box.width > column.width + 0.5 || box.height < 50)
      found.cutOff.push(svg.parentElement.id);
  }
  // A class label broken inside a word: one word's text laid out on two lines.
  found.brokenWords = [];
  for (const label of document.querySelectorAll("code.label")) {
    const words = label.textContent.split(/[\\s/]+/).filter(w => w.length > 1);
    const whole = label.textContent;
    let at = 0;
    for (const word of words) {
      const start = whole.indexOf(word, at); at = start + word.length;
      const range = document.createRange();
      const walker = document.createTreeWalker(label, NodeFilter.SHOW_TEXT);
      let offset = 0, node, startSet = false;
      while ((node = walker.nextNode())) {
        const end = offset + node.textContent.length;
        if (!startSet && start < end) { range.setStart(node, start - offset); startSet = true; }
        if (startSet && start + word.length <= end) { range.setEnd(node, start + word.length - offset); break; }
        offset = end;
      }
      const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
      if (lines.size > 1) found.brokenWords.push(word);
    }
  }
  const window_ = document.querySelector("#sweep-locked-window");
  found.lockedWindowWidth = window_ ? window_.getBoundingClientRect().width : null;
  found.hoverTitles = document.querySelectorAll(".plot svg title").length;
  document.body.setAttribute("data-measure", JSON.stringify(found));
});
</script>"""

_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
          "--force-device-scale-factor=1", "--virtual-time-budget=3000"]


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


def _run(browser: str, args: list[str], height: int = 1000, width: int = 1280) -> subprocess.CompletedProcess:
    profile = tempfile.mkdtemp(prefix="cliffaudit-chromium-")
    try:
        return subprocess.run([browser, *_FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                               *args], capture_output=True, text=True, timeout=180, check=False)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def measure(browser: str, html: str, width: int) -> tuple[dict, list[str]]:
    """What a page measures at ``width`` px (``MEASURE``), and the console errors it logged."""
    with tempfile.TemporaryDirectory() as folder:
        page = Path(folder) / "page.html"
        page.write_text(html.replace("</body>", MEASURE + "</body>"), encoding="utf-8")
        done = _run(browser, ["--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri()], width=width)
    if done.returncode != 0:
        raise RuntimeError(f"chromium exited {done.returncode}: {done.stderr[-2000:]}")
    found = re.search(r'data-measure="([^"]*)"', done.stdout)
    if found is None:
        raise RuntimeError("the measuring script did not run")
    raw = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    return json.loads(raw), errors


def screenshot(browser: str, html_path: Path, width: int, out: Path) -> int:
    """The whole page at ``width`` px as a PNG: measured first, then shot as tall as it is."""
    found, _ = measure(browser, Path(html_path).read_text(encoding="utf-8"), width)
    height = int(found["height"])
    done = _run(browser, [f"--screenshot={Path(out).resolve()}", Path(html_path).resolve().as_uri()],
                height=height, width=width)
    if done.returncode != 0 or not Path(out).is_file():
        raise RuntimeError(f"chromium could not screenshot {html_path}: {done.stderr[-2000:]}")
    return height


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    data = Path(path).read_bytes()[:24]
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


REPOSITORY = Path(__file__).resolve().parents[2]
# The committed pages a reviewer opens, and their screenshots: (report, sweep, page, screenshot name).
COMMITTED = {
    "habit": ("reports/habit/report.json", "reports/habit/sweep/sweep.json", "reports/habit/sweep/sweep.html"),
    "demo": ("reports/demo/report.json", "reports/demo/sweep/sweep.json", "reports/demo/sweep/sweep.html"),
}


def main() -> None:
    """Screenshot every committed sweep page at each of ``WIDTHS`` into docs/img/."""
    browser = find_chromium()
    if browser is None:
        raise SystemExit("no chromium on this machine: install it (e.g. apt-get install chromium) to take screenshots")
    for name, (_, _, page) in COMMITTED.items():
        for width in WIDTHS:
            out = REPOSITORY / "docs" / "img" / f"{name}-sweep-{width}.png"
            height = screenshot(browser, REPOSITORY / page, width, out)
            print(f"wrote {out.relative_to(REPOSITORY)} ({width} x {height})")


if __name__ == "__main__":
    main()
