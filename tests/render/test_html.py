"""The HTML report: self-contained, escaped, and checked in a real browser."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import jsonschema
import pytest

from cliffaudit.cli import main
from cliffaudit.report import Example
from cliffaudit.report.load import load_report
from cliffaudit.render.html import banner, render_html
from cliffaudit.report.model import REPORT_SCHEMA_PATH

# What `make demo` writes and the repository ships for reviewers.
DEMO_REPORT = Path(__file__).resolve().parents[2] / "reports" / "demo" / "report.json"


@pytest.fixture
def hostile_report(audit_report):
    """The tiny audit's report with untrusted text where prompts and outputs go."""
    example = Example(record_id="<script>alert('id')</script>", role="student", strictly_valid=False,
                      before_violation='{"ranking": ["<script>alert(1)</script>', violating_token="<b>",
                      after_violation="&amp;", violation_position=3, violation_reason="</pre><script>x()</script>")
    return audit_report.model_copy(update={"examples": [example]})


def test_html_escapes_untrusted_text(hostile_report):
    html = render_html(hostile_report)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<mark class="violation" title="the first token that breaks the contract">&lt;b&gt;</mark>' in html
    assert "&amp;amp;" in html


def test_html_is_self_contained(audit_report):
    html = render_html(audit_report, proposed_lambda=1.1)
    assert not re.search(r"<(script|link|img|iframe)\b", html)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert html.count("<svg") == 2  # the parse rate against lambda, the reliability diagram


def test_banner_verdict_is_the_gates(audit_report):
    from cliffaudit.gate.verdict import evaluate

    assert banner(audit_report).passed is None
    end = audit_report.lambdas[-1]
    for lam in (1.05, end - 0.01, end + 0.5, (audit_report.recommended_lambda or end) + 1):
        shown = banner(audit_report, proposed_lambda=lam)
        gate = evaluate(audit_report, lam, rollouts=audit_report.settings.rollouts)
        assert (shown.passed, shown.reason) == (gate.passed, gate.reason)
    assert banner(audit_report, proposed_lambda=end + 0.5).passed is False  # never vouched beyond the grid


def test_report_command_rerenders_and_sets_exit_code(audit_report, tmp_path, capsys):
    path = tmp_path / "report.json"
    path.write_text(audit_report.model_dump_json())
    assert main(["report", str(path)]) == 0
    assert (tmp_path / "report.html").read_text().startswith("<!DOCTYPE html>")
    out = tmp_path / "other.html"
    high = audit_report.lambdas[-1] + 1.0
    assert main(["report", str(path), "--html", str(out), "--lambda", str(high)]) == 1
    assert "FAIL" in out.read_text()
    capsys.readouterr()


def test_report_command_never_passes_a_lambda_on_a_report_that_says_nothing(audit_report, tmp_path, capsys):
    """The tiny random teacher never parses: the gate refuses its report, so the banner
    of `cliffaudit report --lambda` must not show PASS either (it shows the refusal)."""
    path = tmp_path / "report.json"
    path.write_text(audit_report.model_dump_json())
    assert main(["report", str(path), "--lambda", "1.05"]) == 1
    page = (tmp_path / "report.html").read_text()
    assert "FAIL" in page and "less than the" in page and "PASS" not in page
    capsys.readouterr()


@pytest.mark.parametrize(("content", "fragment"), [("{", "not JSON"), ("{}", "not a cliffaudit report"),
                                                   ('{"schema_version": 99}', "schema_version 99")])
def test_report_command_refuses_bad_reports(tmp_path, capsys, content, fragment):
    path = tmp_path / "report.json"
    path.write_text(content)
    assert main(["report", str(path)]) == 2
    assert fragment in capsys.readouterr().err
    assert not (tmp_path / "report.html").exists()


REPORTS = DEMO_REPORT.parents[1]


def test_report_with_the_sweep_of_its_pair_renders(tmp_path, capsys):
    out = tmp_path / "page.html"
    assert main(["report", str(REPORTS / "habit" / "report.json"), "--sweep",
                 str(REPORTS / "habit" / "sweep" / "sweep.json"), "--html", str(out)]) == 0
    assert 'id="sweep"' in out.read_text()
    capsys.readouterr()


@pytest.mark.parametrize(("sweep_pair", "differs"), [("habit", ("teacher:", "warm start:", "reference:"))])
def test_report_refuses_the_sweep_of_another_pair(tmp_path, capsys, sweep_pair, differs):
    """The demo's report with the habit pair's sweep once read "consistent: no cliff" above
    "cliff at 1.375" and exited 0."""
    out = tmp_path / "page.html"
    code = main(["report", str(DEMO_REPORT), "--sweep", str(REPORTS / sweep_pair / "sweep" / "sweep.json"),
                 "--html", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "a sweep of another pair than" in err
    assert all(role in err for role in differs) and "cliffaudit/demo/habit/checkpoints/teacher" in err
    assert not out.exists()


def test_report_refuses_a_sweep_at_another_drop(tmp_path, capsys):
    report = load_report(DEMO_REPORT)
    report = report.model_copy(update={"cliff": report.cliff.model_copy(update={"drop": 0.2})})
    path = tmp_path / "report.json"
    path.write_text(report.model_dump_json())
    assert main(["report", str(path), "--sweep", str(REPORTS / "demo" / "sweep" / "sweep.json")]) == 2
    assert "drop: the sweep's prediction falls by 0.1, the report's by 0.2" in capsys.readouterr().err


@pytest.mark.parametrize(("given", "fragment"), [
    (DEMO_REPORT, "an audit report, not a sweep.json: the report comes first"),
    (REPORTS / "demo" / "sweep" / "prediction.json",
     f"a sweep's prediction lock (prediction.json), not a sweep.json: --sweep takes "
     f"{REPORTS / 'demo' / 'sweep' / 'sweep.json'}, beside it"),
    (REPORTS / "demo" / "sweep" / "sweep.html",
     f"an HTML page (what cliffaudit renders), not a sweep.json: --sweep takes "
     f"{REPORTS / 'demo' / 'sweep' / 'sweep.json'}, beside it"),
])
def test_report_names_the_right_file_for_sweep(tmp_path, capsys, given, fragment):
    code = main(["report", str(DEMO_REPORT), "--sweep", str(given), "--html", str(tmp_path / "page.html")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and fragment in err, err


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_committed_demo_report_is_current():
    data = json.loads(DEMO_REPORT.read_text(encoding="utf-8"))
    jsonschema.validate(data, json.loads(REPORT_SCHEMA_PATH.read_text(encoding="utf-8")))
    report = load_report(DEMO_REPORT)
    # The demo's warm start is looser than its teacher everywhere: no cliff up to the grid's end.
    assert report.cliff.lambda_v is None and report.recommended_lambda is None and report.binding_class is None
    assert report.cliff.source == "analytic" and report.cliff.agree  # the fixed point, sampled at 3, agrees
    assert (DEMO_REPORT.parent / "report.html").is_file()


# Both committed pairs, each with its locked sweep: the pages a reviewer opens.
COMMITTED_PAGES = {
    "demo": (DEMO_REPORT, DEMO_REPORT.parent / "sweep" / "sweep.json"),
    "habit": (DEMO_REPORT.parents[1] / "habit" / "report.json", DEMO_REPORT.parents[1] / "habit" / "sweep" / "sweep.json"),
}
# Appended to the page under test only: the browser writes what it measured into the DOM.
_MEASURE = """<script>
window.addEventListener("load", () => {
  const root = document.documentElement;
  document.body.setAttribute("data-overflow", String(root.scrollWidth - window.innerWidth));
});
</script>"""


@pytest.mark.parametrize("width", [1280, 800])
@pytest.mark.parametrize("pair", sorted(COMMITTED_PAGES))
def test_committed_reports_read_in_a_real_browser(tmp_path, pair, width):
    """Each committed report with its sweep, at a desktop and a narrow width: no
    horizontal overflow, no console error, the verdicts and the main plot there."""
    from cliffaudit.sweep.model import SweepReport

    browser = _chromium()
    if browser is None:
        pytest.skip("no chromium on this machine (tests do not install system packages)")
    report_path, sweep_path = COMMITTED_PAGES[pair]
    sweep = SweepReport.model_validate_json(sweep_path.read_text(encoding="utf-8"))
    page = tmp_path / "report.html"
    page.write_text(render_html(load_report(report_path), proposed_lambda=1.2, sweep=sweep)
                    .replace("</body>", _MEASURE + "</body>"))
    profile = tempfile.mkdtemp()
    done = subprocess.run(
        [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
         f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", "--virtual-time-budget=3000",
         f"--window-size={width},1000", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    console_errors = [line for line in done.stderr.splitlines() if "CONSOLE" in line and "ERROR" in line.upper()]
    assert not console_errors, console_errors
    dom = done.stdout
    overflow = re.search(r'data-overflow="(-?\d+)"', dom)
    assert overflow is not None, "the measuring script did not run"
    assert int(overflow.group(1)) <= 0, f"{pair} at {width} px overflows by {overflow.group(1)} px"
    assert dom.index('id="sweep-verdict"') < dom.index('id="verdict"') < dom.index('id="plot-parse-rate"')
    assert "Recommended" in dom or "No cliff up to lambda" in dom
    assert 'id="proposed"' in dom
    for plot in ("plot-parse-rate", "plot-sweep", "plot-reliability"):
        block = dom[dom.index(f'id="{plot}"'):]
        assert "<svg" in block[:400], plot
