"""The HTML report: self-contained, escaped, and checked in a real browser."""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest

from cliffaudit.cli import main
from cliffaudit.gate.verdict import evaluate
from cliffaudit.render import browser, plots
from cliffaudit.render.glossary import class_gloss, visible_text
from cliffaudit.render.html import banner, render_html
from cliffaudit.render.pair import model_name
from cliffaudit.report import Example
from cliffaudit.report.load import load_report
from cliffaudit.report.model import REPORT_SCHEMA_PATH
from cliffaudit.report.preconditions import meaning
from cliffaudit.sweep.model import load_sweep

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


def test_a_sweep_of_the_same_prediction_rerun_elsewhere_is_not_called_untested():
    """The habit report was rerun after its sweep was locked: its interval moved in the 8th
    digit (float kernels), which is the same prediction; a window moved by 0.01 is not."""
    from cliffaudit.render.pair import locked_prediction_differs

    sweep = load_sweep(REPORTS / "habit" / "sweep" / "sweep.json")
    report = load_report(HABIT)
    low, high = sweep.prediction.interval

    def with_interval(lower: float):
        return report.model_copy(update={"cliff": report.cliff.model_copy(update={"interval": (lower, high)})})

    rerun = with_interval(low + 2e-8)  # the last digits another CPU moves
    assert not locked_prediction_differs(rerun, sweep)
    assert "which no sweep has tested" not in render_html(rerun, sweep=sweep)
    assert locked_prediction_differs(with_interval(low + 0.01), sweep)


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


def test_committed_demo_report_is_current():
    data = json.loads(DEMO_REPORT.read_text(encoding="utf-8"))
    jsonschema.validate(data, json.loads(REPORT_SCHEMA_PATH.read_text(encoding="utf-8")))
    report = load_report(DEMO_REPORT)
    # The demo's warm start is looser than its teacher everywhere: no cliff up to the grid's end.
    assert report.cliff.lambda_v is None and report.recommended_lambda is None and report.binding_class is None
    assert report.cliff.source == "analytic" and report.cliff.agree  # the fixed point, sampled at 3, agrees
    assert (DEMO_REPORT.parent / "report.html").is_file()


# ----------------------------------------------------------------------------- what the page says


def _page(report_path: Path, sweep_path: Path | None = None, lam: float | None = None) -> str:
    sweep = load_sweep(sweep_path) if sweep_path else None
    return render_html(load_report(report_path), proposed_lambda=lam, sweep=sweep)


HABIT = REPORTS / "habit" / "report.json"
HABIT_SWEEP = REPORTS / "habit" / "sweep" / "sweep.json"
DEMO_SWEEP = REPORTS / "demo" / "sweep" / "sweep.json"


def test_the_launch_verdict_comes_first_and_the_prediction_test_is_a_neutral_panel():
    page = _page(HABIT, HABIT_SWEEP, lam=1.2)
    assert page.index('id="verdict"') < page.index('id="validation"') < page.index('id="plot-parse-rate"')
    verdict = page[page.index('id="verdict"'):page.index('id="validation"')]
    assert 'class="banner pass"' in page and "PASS" in verdict
    validation = page[page.index('id="validation"'):page.index("</section>", page.index('id="validation"'))]
    assert 'class="panel"' in validation and 'class="banner' not in validation  # no green: not an approval to train
    assert "Result: <strong>consistent</strong>" in validation and "not a verdict on a launch" in validation
    assert "inside" not in validation.split("Result:")[1][:40]  # today's words, also for an old sweep.json


def test_the_page_names_the_pair_in_its_title():
    page = _page(HABIT, HABIT_SWEEP, lam=1.2)
    title = re.search(r"<title>(.*?)</title>", page).group(1)
    assert title.startswith("habit/teacher → habit/student · cliffaudit: λ 1.2 PASS · train with λ &lt; 1.368")
    assert title.endswith("prediction test: consistent")
    assert model_name("/ckpt/run-7/global_step_200/actor/huggingface") == "run-7/global_step_200"
    assert model_name("Qwen/Qwen3-4B") == "Qwen/Qwen3-4B"


def test_the_banner_states_the_predicted_rate_with_its_band_and_what_the_drop_means():
    page = _page(HABIT, lam=1.2)
    report = load_report(HABIT)
    judged = evaluate(report, 1.2)
    sentence = re.sub(r"\s+", " ", page[page.index('id="predicted-rate"'):page.index("</p>", page.index('id="predicted-rate"'))])
    assert f"At λ = 1.2 the fixed point is predicted to parse <strong>{judged.predicted.rate:.3f}</strong>" in sentence
    assert f"90% band {judged.predicted.band[0]:.3f} to {judged.predicted.band[1]:.3f}" in sentence
    assert f"at λ = 1, the teacher itself, {judged.predicted.at_one:.3f}" in sentence
    assert 'What "safe" means here: the parse rate stays within 0.1 (absolute' in page


def test_values_past_the_grid_read_past_the_grid():
    """The habit pair's `root key` and `end of sequence` have closed-form cliffs of 31.3 and
    64.7 on a grid that ends at 3: the audit says nothing there."""
    page = _page(HABIT)
    table = page[page.index('id="classes"'):page.index("</table>", page.index('id="classes"'))]
    assert "31.260" not in table and "64.719" not in table and table.count("<td>&gt; 3</td>") == 2


def test_each_class_has_a_plain_words_gloss_and_wraps_only_between_words():
    page = _page(HABIT)
    assert "the first character of the answer; answers that open with a ```json fence or with prose break here" \
        in page.replace("&lt;", "<")
    report = load_report(HABIT)
    for row in report.classes:
        assert class_gloss(row.label), row.label
    assert '<code class="label">/<wbr>ranking/<wbr>* value</code>' in page


def test_a_class_where_the_contract_approximates_is_marked_with_the_text_on_demand():
    report = load_report(HABIT)
    note = "admits too little: maxItems above 65,535 is not held (maxItems at /properties/ranking)"
    rows = [report.classes[0].model_copy(update={"approximation": note}), *report.classes[1:]]
    page = render_html(report.model_copy(update={"classes": rows}))
    assert f'<span class="approx" title="the contract is approximate here: {note}">≈ approximate</span>' in page
    assert f'<td class="tokens">{note}</td>' in page


def test_a_control_character_is_shown_as_its_escape_not_a_box():
    page = _page(DEMO_REPORT)  # the demo's warm start wrote a 0x05 byte
    assert "\x05" not in page
    assert '<mark class="violation" title="the first token that breaks the contract">\\x05</mark>' in page
    assert visible_text("a\x05b") == 'a<span class="control" title="an unprintable character, U+0005">\\x05</span>b'


def test_no_margin_is_suggested_where_there_is_no_bound():
    assert "--margin" not in _page(DEMO_REPORT)  # no cliff: nothing to keep a distance from
    assert "--margin 0.05" in _page(HABIT)


def test_each_precondition_reads_pass_unclear_or_fail_with_one_sentence():
    page = _page(DEMO_REPORT)
    listed = page[page.index('id="precondition-list"'):page.index("</ul>", page.index('id="precondition-list"'))]
    assert listed.count('<span class="tag ') == 4  # calibrated, single binding class, agreement, contract exact
    assert '<span class="tag unclear">unclear</span> <strong>calibrated</strong>' in listed
    assert '<span class="tag pass">pass</span> <strong>contract exact</strong>' in listed
    assert meaning("calibrated", "unclear") in listed.replace("&#39;", "'")
    summary = page[page.index('id="precondition-summary"'):]
    assert '<span class="tag pass">3 pass</span> <span class="tag unclear">1 unclear</span> (calibrated)' in summary
    assert "failed and unclear preconditions are warnings" in summary


def _colours_by_gid(svg: str) -> dict[str, str]:
    found = {}
    for gid, body in re.findall(r'<g id="([a-z-]+)"[^>]*>(.*?)</g>', svg, flags=re.S):
        colour = re.search(r"(?:stroke|fill): (#[0-9a-f]{6})", body)
        if colour:
            found[gid] = colour.group(1)
    return found


def test_one_colour_means_one_thing_on_every_plot():
    report, sweep = load_report(HABIT), load_sweep(HABIT_SWEEP)
    parse_rate = _colours_by_gid(plots.parse_rate(report, 1.2))
    swept = _colours_by_gid(plots.sweep(sweep, report))
    assert parse_rate["parse-rate-predicted"] == swept["sweep-predicted"] == plots.COLOURS["predicted"]
    assert parse_rate["parse-rate-cliff"] == swept["sweep-locked-window"] == plots.COLOURS["cliff"]
    assert parse_rate["parse-rate-sampled"] == plots.COLOURS["sampled"]
    assert swept["sweep-observed"] == plots.COLOURS["observed"] and swept["sweep-quality"] == plots.COLOURS["quality"]
    assert len(set(plots.COLOURS.values())) == len(plots.COLOURS)


def test_plot_points_show_their_values_on_hover():
    svg = plots.parse_rate(load_report(HABIT))
    titles = re.findall(r'<g id="parse-rate-hover-\d+" class="hover"><title>(.*?)</title>', svg)
    assert "λ 1.55: 188 of 256 samples of the fixed point parse (0.734, 90% interval 0.687 to 0.777)" in titles
    assert any(t.startswith("λ 1.35: predicted ") for t in titles)
    swept = plots.sweep(load_sweep(HABIT_SWEEP), load_report(HABIT))
    assert re.search(r"<title>λ 1.375: observed parse rate 0.8\d\d \(seeds: ", swept)
    assert not re.search(r'<svg[^>]* width="', svg)  # sized by the page, not fixed in points


def test_the_sweep_is_drawn_against_its_own_drop_line_with_the_distance_to_the_fixed_point():
    """The demo's runs sit far below the audit's drop line and their verdict is "no cliff":
    drawn against the sweep's own line they are above it, and the gap to the fixed point is
    labelled."""
    sweep = load_sweep(DEMO_SWEEP)
    svg = plots.sweep(sweep, load_report(DEMO_REPORT))
    assert "the sweep&#x27;s drop line (best so far − 0.1)" in svg or "the sweep's drop line (best so far − 0.1)" in svg
    assert "the runs stayed 0.38 from the fixed point (11% of the way from the warm start)" in svg
    assert "locked prediction: no cliff up to λ = 3" in svg
    assert "NDCG@1" in svg and "ndcg_at_1" not in svg
    page_plot = plots.parse_rate(load_report(DEMO_REPORT))
    assert "observed" not in page_plot  # the audit's plot holds the audit's numbers only


# ----------------------------------------------------------------------------- in a real browser

# Both committed pairs, each with its locked sweep: the pages a reviewer opens.
COMMITTED_PAGES = {name: (REPORTS.parent / report, REPORTS.parent / sweep, REPORTS.parent / page)
                   for name, (report, sweep, page) in browser.COMMITTED.items()}


@pytest.fixture(scope="module")
def chromium() -> str:
    found = browser.find_chromium()
    if found is None:
        pytest.skip("no chromium on this machine (tests do not install system packages)")
    return found


@pytest.mark.parametrize("width", browser.WIDTHS)
@pytest.mark.parametrize("pair", sorted(COMMITTED_PAGES))
def test_committed_reports_read_in_a_real_browser(chromium, pair, width):
    """Each committed report with its sweep and a proposed lambda, at a desktop and a narrow
    width: no horizontal overflow, no plot cut off or wider than its column, no plot text
    under 11 px, no class label broken inside a word, the locked window visible, values on
    hover, no console error, the launch verdict before the prediction's test."""
    report_path, sweep_path, _ = COMMITTED_PAGES[pair]
    page = _page(report_path, sweep_path, lam=1.2)
    found, errors = browser.measure(chromium, page, width)
    assert not errors, errors
    assert found["overflow"] <= 0, f"{pair} at {width} px overflows by {found['overflow']} px"
    assert found["cutOff"] == [], f"cut off at {width} px: {found['cutOff']}"
    assert set(found["smallestText"]) == {"plot-parse-rate", "plot-sweep", "plot-reliability"}
    for plot, size in found["smallestText"].items():
        assert size >= 11.0, f"{plot} at {width} px has text of {size:.1f} px"
    assert found["brokenWords"] == [], found["brokenWords"]
    assert found["title"].startswith(f"{pair}/teacher → {pair}/student")
    assert found["hoverTitles"] > 20
    if pair == "habit":  # a 0.014-wide window on a 0.9-wide axis stays visible, above the onset's band
        assert found["lockedWindowWidth"] >= 3
    assert page.index('id="verdict"') < page.index('id="validation"') < page.index('id="plot-parse-rate"')


@pytest.mark.parametrize("width", browser.WIDTHS)
@pytest.mark.parametrize("pair", sorted(COMMITTED_PAGES))
def test_committed_screenshots_show_each_page_whole(chromium, pair, width):
    """docs/img holds each committed sweep page at each width, as tall as the page (one taken
    at a fixed window height cut the demo's page off mid-plot): `make screenshots`."""
    _, _, committed_page = COMMITTED_PAGES[pair]
    shot = REPORTS.parent / "docs" / "img" / f"{pair}-sweep-{width}.png"
    assert shot.is_file(), f"{shot} is missing: run `make screenshots`"
    found, _ = browser.measure(chromium, committed_page.read_text(encoding="utf-8"), width)
    shot_width, shot_height = browser.png_size(shot)
    assert shot_width == width
    # Fonts differ a little between machines; a page that grew by a section does not pass.
    assert abs(shot_height - found["height"]) <= 0.03 * found["height"], (shot_height, found["height"])


def test_committed_pages_are_rendered_from_the_committed_reports():
    """reports/*/sweep/sweep.html is what `make pages` writes today from the report and its sweep."""
    for report_path, sweep_path, page in COMMITTED_PAGES.values():
        assert page.read_text(encoding="utf-8") == _page(report_path, sweep_path), f"{page}: run `make pages`"
    for report_path in (DEMO_REPORT, HABIT):
        assert report_path.with_suffix(".html").read_text(encoding="utf-8") == _page(report_path)
