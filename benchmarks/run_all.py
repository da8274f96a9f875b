"""Run every benchmark in this folder, one after the other (``make bench``).

Each script prints its own side-by-side figures and ratios. Anchors (gunpowder 1.5, daisy 2.0,
torch) are used when their venvs exist (``make bench-anchors``); otherwise the scripts say so.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
SCRIPTS = ["batch_throughput.py", "lsd_throughput.py", "train_step.py", "compile_cache.py", "predict_throughput.py", "segment_quality.py",
           "segment_throughput.py"]


def main() -> int:
    failed = []
    for name in SCRIPTS:
        script = HERE / name
        if not script.exists():
            print(f"--- {name}: missing, skipped", flush=True)
            continue
        print(f"--- {name}", flush=True)
        if subprocess.run([sys.executable, str(script)]).returncode != 0:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
