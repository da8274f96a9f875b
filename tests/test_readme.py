"""Every code block of the README runs as written (issue 11 item 14).

The blocks are taken from ``README.md`` itself: the laptop flow and the local-cluster flow run line
by line as shell commands in a temp dir, the gunpowder script runs as a Python script, ``make``'s
targets are checked with ``make -n``. Only sizes change, by flags appended to a command or by
replacing a size (each change must apply, so a README edit that drops one fails here): small
samples and networks, two iterations, one worker and free ports for the local cluster.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
BIN = os.path.dirname(sys.executable)

#: flags appended to a README command (matched by its start) to keep the run small
SMALL_FLAGS = {
    # 200 in-plane: the tutorial's rotation and section misalignment of an 84x84 input reach ~180
    "daskseg synth data/": "--shape 32,200,200",
    "daskseg net create nets/": "--train-input 28,84,84 --predict-input 28,84,84 --num-fmaps 2 "
    "--fmap-inc-factor 2 --downsample '1,2,2;1,2,2'",
    "daskseg train --config train.yaml": "--iterations 2",
}
#: README commands run with nothing changed
AS_IS = ("daskseg predict ", "daskseg info ", "daskseg segment ", "daskseg evaluate ", "daskseg pyramid ")


def code_blocks() -> list[tuple[str, str]]:
    """``(language, text)`` of every fenced block of the README, in order."""
    return re.findall(r"^```(\w*)\n(.*?)^```", README.read_text(), flags=re.M | re.S)


def commands(text: str) -> list[str]:
    """The shell commands of a block: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    out = []
    for line in joined.splitlines():
        line = re.sub(r"\s+#.*$", "", line).strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def block(language: str, first: str) -> str:
    """The one README block of ``language`` whose first command starts with ``first``."""
    found = [t for lang, t in code_blocks() if lang == language and t.lstrip().startswith(first)]
    assert len(found) == 1, f"README: expected one {language} block starting with {first!r}, found {len(found)}"
    return found[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(command: str, cwd: Path, timeout: int = 300) -> str:
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"README command failed: {command}\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def small(command: str, used: set[str]) -> str:
    for start, flags in SMALL_FLAGS.items():
        if command.startswith(start):
            used.add(start)
            return f"{command} {flags}"
    assert command.startswith(AS_IS), f"README command not known to tests/test_readme.py: {command}"
    return command


def test_every_readme_code_block_is_run_by_these_tests():
    """A new block must be added here (and run), or the README shows something nobody ran."""
    covered = {
        ("bash", "make demo"), ("python", "import daskseg as gp"), ("yaml", "samples:"),
        ("bash", "daskseg synth data/"), ("bash", "deploy/local/start-cluster.sh"), ("", "daskseg/"),
        ("", "pred.zarr/volumes/pred_affs/"), ("bash", "daskseg pyramid"), ("bash", "pip install 'daskseg[view]'"),
    }
    for language, text in code_blocks():
        known = any(language == lang and text.lstrip().startswith(first) for lang, first in covered)
        assert known, f"README block not run by tests/test_readme.py: ```{language}\n{text[:80]}"


def test_make_targets_shown_in_the_readme_exist():
    make = commands(block("bash", "make demo"))
    assert make == ["make demo", "make test"]
    dry = subprocess.run(["make", "-n", "demo", "test"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert dry.returncode == 0, dry.stderr
    assert "daskseg demo --out demo_output" in dry.stdout and "-m pytest -q" in dry.stdout


def test_the_layout_block_names_existing_paths():
    layout = block("", "daskseg/")
    for line in layout.splitlines():
        name = line.split()[0] if line.strip() else ""
        if line.startswith("  ") and name.endswith((".py", "/")):
            assert (REPO / "daskseg" / name).exists(), name
        elif name.endswith("/"):
            assert (REPO / name).is_dir(), name


@pytest.mark.slow
def test_the_readme_gunpowder_script_runs(tmp_path):
    script = block("python", "import daskseg as gp")
    for big, little in (("(84, 268, 268)", "(28, 84, 84)"), ("(56, 56, 56)", "(8, 44, 44)")):
        assert big in script
        script = script.replace(big, little)
    run("daskseg synth . --format hdf --shape 32,120,120", tmp_path)
    (tmp_path / "port.py").write_text(script + "\nprint(batch[raw].data.shape, batch[gt_labels].data.shape)\n")
    out = run(f"{sys.executable} port.py", tmp_path)
    assert "(28, 84, 84) (8, 44, 44)" in out


def view(cwd: Path) -> None:
    """The README's `daskseg view` block: it prints the viewer's URL and stops cleanly on Ctrl-C
    (neuroglancer is a dev dependency, so the `pip install` line is not run)."""
    pip, command = commands(block("bash", "pip install 'daskseg[view]'"))
    assert pip.startswith("pip install") and command.startswith("daskseg view ")
    env = {**os.environ, "PATH": BIN + os.pathsep + os.environ.get("PATH", "")}
    proc = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = proc.stdout.readline()  # blocks until the viewer is up (or the command ended)
        assert url.startswith("http://127.0.0.1:"), (url, proc.stderr.read() if proc.poll() is not None else "")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) in (0, 130)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.slow
def test_the_readme_laptop_and_local_cluster_commands_run_as_written(tmp_path):
    """synth, net create, train, predict, info, segment, evaluate, pyramid, view; then train and
    predict again on a cluster started by deploy/local/start-cluster.sh (both find their work done),
    and stop it."""
    config = block("yaml", "samples:")
    assert yaml.safe_load(config)["iterations"] == 10000  # two, by --iterations
    (tmp_path / "train.yaml").write_text(config)
    used: set[str] = set()
    outputs = [run(small(c, used), tmp_path) for c in commands(block("bash", "daskseg synth data/"))]
    assert "trained to iteration 2" in outputs[2]
    assert (tmp_path / "pred.zarr" / "volumes" / "pred_affs").is_dir()
    assert (tmp_path / "seg.zarr" / "volumes" / "segmentation_0.7").is_dir()
    assert "voi" in outputs[-1].lower()
    for command in commands(block("bash", "daskseg pyramid")):  # at these sizes: one chunk, no levels needed
        run(small(command, used), tmp_path)
    for line in block("", "pred.zarr/volumes/pred_affs/").splitlines():  # the OME-Zarr layout shown
        path = line.split()[0].rstrip("/")
        assert (tmp_path / path).exists() or (tmp_path / "data" / path).exists(), path
    view(tmp_path)

    port, dashboard = free_port(), free_port()
    cluster = commands(block("bash", "deploy/local/start-cluster.sh"))
    start = cluster[0]
    for old, new in (("--workers 4", "--workers 1"), ("/tmp/dsc", str(tmp_path / "dsc"))):
        assert old in start
        start = start.replace(old, new)
    run(f"DASK={BIN}/dask {start} --port {port} --dashboard-port {dashboard}", REPO)
    try:
        for command in cluster[1:-1]:
            assert "tcp://127.0.0.1:8786" in command
            out = run(small(command.replace("tcp://127.0.0.1:8786", f"tcp://127.0.0.1:{port}"), used), tmp_path)
            assert "trained to iteration 2" in out or "done before" in out, out
    finally:
        stop = cluster[-1]
        assert "/tmp/dsc" in stop
        run(f"{REPO}/{stop.replace('/tmp/dsc', str(tmp_path / 'dsc'))}", REPO)
    assert used == set(SMALL_FLAGS)
