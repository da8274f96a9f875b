"""`make bench-torch` (issue 11 item 16): its venv gets torch and daskseg, and it stops, leaving no
stamp, when torch cannot be installed (so the next `make bench-torch` tries again)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def make(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # a make of its own: under `make test` (as in CI) the outer make's MAKELEVEL/MAKEFLAGS would add
    # "Entering/Leaving directory" lines to the output
    outer = {"MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES"}
    return subprocess.run(["make", "--no-print-directory", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env={**{k: v for k, v in os.environ.items() if k not in outer}, **(env or {})})


def test_bench_torch_installs_torch_and_daskseg_into_its_venv_then_runs_the_benchmark(tmp_path):
    venv = tmp_path / "tv"
    dry = make("-n", "bench-torch", f"TORCH_VENV={venv}", "BENCH_TORCH_ARGS=--quick")
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert any(" -m venv " in line and line.endswith(str(venv)) for line in lines)
    install = next(line for line in lines if "pip install" in line and "torch" in line.split())
    assert install.startswith(f"{venv}/bin/python") and install.endswith("torch -e .")  # daskseg and its deps
    check = next(line for line in lines if "import torch" in line)
    assert "daskseg" in check  # the venv is only stamped when both import
    assert lines[-2] == f"touch {venv}/.installed"
    assert lines[-1] == f"{venv}/bin/python benchmarks/train_step.py --quick"


@pytest.mark.slow  # makes a venv (ensurepip): ~10 s on a quiet machine
def test_bench_torch_stops_without_a_stamp_when_torch_cannot_be_installed(tmp_path):
    venv = tmp_path / "tv"
    wheels = tmp_path / "no-wheels"
    wheels.mkdir()
    run = make("bench-torch", f"TORCH_VENV={venv}", f"TORCH_PIP_ARGS=--no-index --find-links {wheels}",
               env={"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert run.returncode != 0
    assert "torch" in run.stderr
    assert (venv / "bin" / "python").exists() and not (venv / ".installed").exists()
    assert "train_step.py" not in run.stdout.splitlines()[-1]  # the benchmark did not start
