"""A script that starts PreCache's LocalCluster at module level, outside `if __name__ == "__main__":`,
is refused before any worker process starts, with one error saying so; guarded, it runs (issue 11
item 13)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from daskseg.main_guard import guarded_lines

PIPELINE = """\
import numpy as np
import daskseg as gp

raw = gp.ArrayKey("RAW")
spec = gp.ArraySpec(roi=gp.Roi((0, 0, 0), (8, 8, 8)), voxel_size=gp.Coordinate((1, 1, 1)))
pipeline = gp.GPArraySource(raw, gp.Array(np.zeros((8, 8, 8), np.float32), spec)) + gp.PreCache(cache_size=2, num_workers=1)
request = gp.BatchRequest()
request.add(raw, (4, 4, 4))
"""
RUN = """\
with gp.build(pipeline):
    print("batch", pipeline.request_batch(request)[raw].data.shape)
"""


def run_script(tmp_path, text: str) -> subprocess.CompletedProcess:
    script = tmp_path / "train_script.py"
    script.write_text(text)
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)


def test_an_unguarded_precache_script_is_refused_before_workers_start(tmp_path):
    done = run_script(tmp_path, PIPELINE + RUN)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if line.startswith("daskseg.errors.")]
    assert errors == [errors[0]] and errors[0].startswith("daskseg.errors.ClusterError: ")
    assert f"{tmp_path / 'train_script.py'}, line 9, starts a LocalCluster" in errors[0]
    assert 'if __name__ == "__main__":' in errors[0]
    assert "Nanny failed to start" not in done.stderr and len(done.stderr.splitlines()) < 40


def test_the_same_script_with_the_guard_runs(tmp_path):
    done = run_script(tmp_path, PIPELINE + 'if __name__ == "__main__":\n' + textwrap.indent(RUN, "    "))
    assert done.returncode == 0, done.stderr
    assert "batch (4, 4, 4)" in done.stdout


def test_guarded_lines_finds_module_level_guards_either_way_round():
    source = textwrap.dedent("""\
        x = 1
        if __name__ == "__main__":
            main()
            more()
        if "__main__" == __name__:
            main()
        if x:
            if __name__ == "__main__":
                nested()
        if __name__ != "__main__":
            other()
    """)
    assert guarded_lines(source) == [(3, 4), (6, 6)]
