"""The explorers really work in a browser: JupyterLab in headless Chromium runs a notebook
with ``quant_explorer``, a key press moves the fractional-length slider, and the
explorer's error line changes with it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
playwright = pytest.importorskip("playwright.sync_api")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).is_file(), reason="needs Chromium (Debian package chromium; `make test` installs it)"
)
TOKEN = "f8lab-test"
EXPLORER = """\
import torch
from f8lab.analysis import ModelTensor, quant_explorer
values = torch.randn(20_000, generator=torch.Generator().manual_seed(0)) * 0.1
quant_explorer([ModelTensor("demo", "weight", True, values)])"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def lab(tmp_path):
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(EXPLORER)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(notebook, tmp_path / "explorer.ipynb")
    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--ServerApp.token={TOKEN}",
            f"--ServerApp.root_dir={tmp_path}",
            "--LabApp.expose_app_in_browser=True",
            "--allow-root",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "config")},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                pytest.fail("JupyterLab did not start within 60 s")
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


def test_moving_the_fraclen_slider_changes_the_explorer(lab):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(f"{lab}/lab/tree/explorer.ipynb?token={TOKEN}")
        page.wait_for_function(
            "window.jupyterapp && window.jupyterapp.shell.currentWidget"
            " && window.jupyterapp.shell.currentWidget.sessionContext"
            " && window.jupyterapp.shell.currentWidget.sessionContext.session",
            timeout=60_000,
        )
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        summary = page.locator(".widget-html-content", has_text="RMS error")
        summary.wait_for(timeout=120_000)
        before = summary.inner_text()
        fl_before = int(before.split("[8, ")[1].split("]")[0])
        target = f"[8, {fl_before - 2}]"
        fraclen_handle = page.locator(".widget-slider").nth(1).locator(".noUi-handle")
        fraclen_handle.focus()
        page.keyboard.press("ArrowLeft")
        page.keyboard.press("ArrowLeft")
        page.wait_for_function(
            "([target]) => [...document.querySelectorAll('.widget-html-content')]"
            ".some(x => x.innerText.includes('RMS error') && x.innerText.includes(target))",
            arg=[target],
            timeout=60_000,
        )
        after = summary.inner_text()
        browser.close()
    assert after.split("RMS error")[1] != before.split("RMS error")[1]
