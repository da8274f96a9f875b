"""The SLURM launcher generates the job script offline (nothing is submitted)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile

# The dev extra installs dask-jobqueue, so these tests run and never skip. It is looked up, not
# imported: importing dask_jobqueue replaces this process's SIGINT handler with sys.exit.
assert importlib.util.find_spec("dask_jobqueue") is not None, "dask-jobqueue is missing: pip install -e .[dev]"

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCH = os.path.join(ROOT, "deploy", "slurm", "launch.py")


def job_script(*args: str) -> str:
    """The job script the launcher would submit (run elsewhere: dask-jobqueue creates its log directory)."""
    with tempfile.TemporaryDirectory() as cwd:
        out = subprocess.run(
            [sys.executable, LAUNCH, "--print-job-script", *args], capture_output=True, text=True, timeout=120, cwd=cwd
        )
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_cpu_job_script_has_partition_and_single_threaded_workers():
    script = job_script("--queue", "cpu", "--account", "lab42")
    assert "#SBATCH -p cpu" in script
    assert "#SBATCH -A lab42" in script
    assert "--nworkers 4" in script and "--nthreads 1" in script
    assert "--gres" not in script and "GPU=" not in script
    assert "export XLA_PYTHON_CLIENT_PREALLOCATE=false" in script


def test_gpu_job_script_requests_gpu_and_declares_resource():
    script = job_script("--queue", "gpu", "--gpus", "1")
    assert "#SBATCH --gres=gpu:1" in script
    assert "--resources GPU=1" in script
    assert "--nworkers" not in script  # one worker process holds the GPU
