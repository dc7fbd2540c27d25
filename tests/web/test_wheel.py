"""The app ships in the package: build the wheel, install it into a fresh virtual environment,
start ``cnnkit serve`` from there and load ``/`` (a user who runs ``pip install`` gets the app,
not a 404)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from cnnkit.face import facenet

ROOT = Path(__file__).resolve().parents[2]


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}"
    return done.stdout


@pytest.mark.slow
def test_wheel_installs_and_serves_the_app(tmp_path: Path) -> None:
    # build from a copy, so the checkout gets no build/ or egg-info
    src = tmp_path / "src-copy"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "src", src / "src", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
        "-w", tmp_path / "dist", src, env=env)  # fmt: skip
    wheel = next((tmp_path / "dist").glob("cnnkit-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for part in ("index.html", "css/app.css", "js/app.js", "js/api.js", "js/conv.js"):
        assert f"cnnkit/serve/web/{part}" in names, f"{part} is not in {wheel.name}"

    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--system-site-packages", venv, env=env)
    python = venv / "bin" / "python"
    # the dependencies come from this environment (nothing is downloaded): its site-packages as
    # a plain path entry (its .pth files, e.g. an editable cnnkit, are not processed)
    site = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip()
    )
    (site / "cnnkit-test-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run(python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "-q", wheel, env=env)
    where = run(python, "-c", "import cnnkit; print(cnnkit.__file__)", env=env).strip()
    assert Path(where).is_relative_to(venv), f"cnnkit imported from {where}, not the new venv"

    # cnnkit serve from the new environment (its own interpreter, no PYTHONPATH)
    env["CNNKIT_QUIET"] = "1"
    # FaceNet's weights: `make` fetched them into this venv; a user of the wheel runs
    # `python -m cnnkit.face.facenet` once (no download in the tests)
    env[facenet.ENV] = str(facenet.weights_path())
    db = str(tmp_path / "serve.sqlite3")
    run(python, "-m", "cnnkit", "serve", "keys", "create", "--role", "admin", "--db", db, env=env)
    log = tmp_path / "serve.log"
    with open(log, "w") as out:
        cmd = [python, "-m", "cnnkit", "serve", "--port", "0", "--db", db]
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        url = None
        deadline = time.monotonic() + 120
        while url is None and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            found = re.search(
                r"(?:Uvicorn running on|serve: open) (http://[\d.]+:\d+)", log.read_text()
            )
            url = found.group(1) if found else None
        assert url, f"cnnkit serve from the wheel did not start:\n{log.read_text()[-2000:]}"
        with urllib.request.urlopen(url + "/", timeout=30) as r:
            page = r.read().decode()
        assert r.status == 200 and "<title>cnnkit</title>" in page
        for asset in ("/js/app.js", "/js/faces.js", "/css/app.css"):
            with urllib.request.urlopen(url + asset, timeout=30) as r:
                assert r.status == 200 and len(r.read()) > 500, asset
    finally:
        proc.terminate()
        proc.wait(timeout=30)
