"""The base install needs no torch: a wheel built from this tree, installed into a fresh
venv where torch and the rest of the model side cannot be imported, runs `gate`,
`threshold` and `report`, and `audit` says in one line which extra it needs.

No network: the wheel is built without build isolation and installed without its
dependencies; the base dependencies (numpy, pydantic, ...) are borrowed from the test's
own environment through a .pth file that names a folder of links to them, with every
package of the `audit` extra left out, as if it were not installed.
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from cliffaudit.errors import MODEL_SIDE

ROOT = Path(__file__).resolve().parents[1]
DEMO_REPORT = ROOT / "reports" / "demo" / "report.json"

# Import names of the `audit` extra, and the distributions that carry them.
_NOT_INSTALLED = {name.lower() for name in MODEL_SIDE} | {"accelerate", "scikit_learn", "cliffaudit"}


def _borrowed_base(target: Path) -> Path:
    """A folder of links to this environment's packages, less the model side and
    cliffaudit itself (the fresh venv gets the wheel's): the base dependencies as a
    torch-free install would have them, without a download."""
    target.mkdir()
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        top = entry.name.split("-")[0].split(".")[0].lower()
        if top in _NOT_INSTALLED or entry.name.startswith(("__editable__", "_cliffaudit")) or entry.suffix == ".pth":
            continue
        (target / entry.name).symlink_to(entry)
    return target


def _run(*argv, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run outside the repository unless told otherwise: its source tree would shadow the wheel."""
    return subprocess.run([str(a) for a in argv], capture_output=True, text=True, cwd=cwd or Path("/"), timeout=600,
                          check=False)


@pytest.fixture(scope="module")
def torch_free_venv(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("install")
    built = _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                 "--wheel-dir", work / "wheels", ROOT, cwd=ROOT)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next((work / "wheels").glob("cliffaudit-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        metadata = archive.read(next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))).decode()
    requires = [line for line in metadata.splitlines() if line.startswith("Requires-Dist:")]
    heavy = [line for line in requires if line.split()[1].split(">")[0].split("=")[0].split("<")[0].lower()
             in {"torch", "transformers", "accelerate", "llguidance", "scikit-learn"}]
    assert heavy and all("extra == \"audit\"" in line for line in heavy), heavy  # only the extra pulls them in

    venv = work / "venv"
    assert _run(sys.executable, "-m", "venv", "--without-pip", venv).returncode == 0  # ensurepip costs seconds
    python = venv / "bin" / "python"
    installed = _run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index",
                     wheel)
    assert installed.returncode == 0, installed.stderr[-3000:]
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip())
    (site / "borrowed-base-dependencies.pth").write_text(f"{_borrowed_base(work / 'base')}\n")
    return venv


@pytest.mark.slow
def test_the_base_install_gates_and_thresholds_without_torch(torch_free_venv, tmp_path):
    bin_dir = torch_free_venv / "bin"
    where = _run(bin_dir / "python", "-c", "import cliffaudit, importlib.util; print(cliffaudit.__file__); "
                                          "print(importlib.util.find_spec('torch') is None)")
    located, torch_missing = where.stdout.split()
    assert located.startswith(str(torch_free_venv)) and torch_missing == "True", where.stderr

    gate = _run(bin_dir / "cliffaudit", "gate", DEMO_REPORT, "--lambda", "1.2")
    assert gate.returncode == 0, gate.stderr
    threshold = _run(bin_dir / "cliffaudit", "threshold", "--p", "0.9", "--b", "0.99")
    assert threshold.returncode == 0 and "lambda_v" in threshold.stdout, threshold.stderr
    page = tmp_path / "page.html"
    rendered = _run(bin_dir / "cliffaudit", "report", DEMO_REPORT, "--html", page)
    assert rendered.returncode == 0 and page.read_text().startswith("<!DOCTYPE html>"), rendered.stderr

    audit = _run(bin_dir / "cliffaudit", "audit", "--teacher", "t", "--student", "s", "--probes", "p.jsonl")
    assert audit.returncode == 2
    assert audit.stderr.count("\n") == 1 and "pip install 'cliffaudit[audit]'" in audit.stderr
