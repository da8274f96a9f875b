"""A screenshot check of `daskseg view` in headless Chromium (not part of the test suite: it needs a
browser with WebGL; run it by hand, `python tests/view/screenshot_check.py [OUT.png]`).

It writes a dark grey raw volume (0..400 nm in y and x) and a segmentation of one label lying at an
offset inside it (y 200..360 nm, x 120..280 nm), serves both with ``daskseg.view.ng.open_viewer``,
opens the viewer in headless Chromium (``--remote-debugging-port``, the page captured through the
DevTools protocol once the data has loaded), and measures where the red segment and the grey raw
lie in the picture: the segment must sit at the fractions of the raw's extent its world offset
says (0.5..0.9 of y, 0.3..0.7 of x), within two pixels.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import numpy as np


def capture(url: str, path: str, port: int = 9333, wait: float = 15.0) -> None:
    """Load ``url`` in headless Chromium for ``wait`` seconds and save a PNG of the page."""
    from tornado.websocket import websocket_connect

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        raise SystemExit("no Chromium found: install it (e.g. apt-get install chromium) to run this check")
    profile = tempfile.mkdtemp()
    process = subprocess.Popen(
        [
            browser,
            "--headless=new",
            "--no-sandbox",
            "--enable-unsafe-swiftshader",
            "--use-angle=swiftshader",
            "--window-size=800,800",
            f"--remote-debugging-port={port}",
            f"--user-data-dir={profile}",
            url,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(wait)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json") as r:
            pages = [p for p in json.load(r) if p.get("type") == "page"]

        async def shoot() -> bytes:
            ws = await websocket_connect(pages[0]["webSocketDebuggerUrl"], max_message_size=1 << 30)
            ws.write_message(json.dumps({"id": 1, "method": "Page.captureScreenshot", "params": {"format": "png"}}))
            while True:
                message = json.loads(await ws.read_message())
                if message.get("id") == 1:
                    return base64.b64decode(message["result"]["data"])

        with open(path, "wb") as f:
            f.write(asyncio.run(shoot()))
    finally:
        process.terminate()
        process.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def bounding_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(mask.any(axis=1))[0], np.nonzero(mask.any(axis=0))[0]
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def main(out: str) -> None:
    import matplotlib.image
    import neuroglancer

    from daskseg.io import write_array
    from daskseg.view import layer_specs
    from daskseg.view.ng import open_viewer

    work = tempfile.mkdtemp()
    write_array(f"{work}/o.zarr", "raw", np.full((10, 100, 100), 60, np.uint8), (40, 4, 4))
    write_array(f"{work}/o.zarr", "seg", np.full((4, 40, 40), 3, np.uint64), (40, 4, 4), offset=(160, 200, 120))
    viewer = open_viewer(layer_specs([f"{work}/o.zarr/raw", f"{work}/o.zarr/seg"]))
    with viewer.txn() as s:
        s.layout = "xy"
        s.show_scale_bar = False
        s.show_axis_lines = False
        s.position = [5.5, 50, 50]
        s.cross_section_scale = 0.5
        s.layers["seg"].selected_alpha = 1.0
        s.layers["seg"].segments = [3]
        s.layers["seg"].segment_default_color = "#ff0000"
    with viewer.config_state.txn() as c:
        c.show_ui_controls = False
        c.show_panel_borders = False
    capture(str(viewer), out)
    neuroglancer.stop()
    shutil.rmtree(work, ignore_errors=True)
    rgb = (matplotlib.image.imread(out)[..., :3] * 255).round().astype(int)
    rgb[:80, :80] = 0  # the axis legend (a red "x")
    grey = (np.abs(rgb - 60) <= 3).all(axis=-1)  # the raw, darker than neuroglancer's background
    red = (rgb[..., 0] > 200) & (rgb[..., 1] < 60) & (rgb[..., 2] < 60)
    if not grey.any() or not red.any():
        raise SystemExit(f"FAILED: the picture {out} shows no raw (grey) or no segment (red)")
    gy0, gy1, gx0, gx1 = bounding_box(grey | red)
    ry0, ry1, rx0, rx1 = bounding_box(red)
    h, w = gy1 - gy0, gx1 - gx0
    measured = ((ry0 - gy0) / h, (ry1 - gy0) / h, (rx0 - gx0) / w, (rx1 - gx0) / w)
    expected = (0.5, 0.9, 0.3, 0.7)
    print(f"raw: {h}x{w} px at ({gy0}, {gx0}); segment rows {ry0}..{ry1}, columns {rx0}..{rx1}")
    print(
        "segment at fractions of the raw (y0, y1, x0, x1):", tuple(round(m, 3) for m in measured), "expected", expected
    )
    tolerance = 2 / min(h, w)
    ok = all(abs(m - e) <= tolerance for m, e in zip(measured, expected))
    print("OK: the layers overlap where their world coordinates say" if ok else "FAILED: misplaced")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else os.path.join(tempfile.gettempdir(), "daskseg-view.png"))
