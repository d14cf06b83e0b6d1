"""Regenerate docs/report.png from a real report. One command:

    uv run python docs/scripts/report_screenshot.py

It runs the sample experiment (tests/experiment, 120 calls) on the embedded model, writes
its HTML report and photographs the top of the page with headless Chromium, so the
picture on the README is always a report this version of tooltrial made, numbers and all.
Needs Chromium (`apt-get install chromium`) and a few minutes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PICTURE = ROOT / "docs" / "report.png"


def main() -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        sys.exit("needs Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory() as tmp:
        results, page = Path(tmp) / "results", Path(tmp) / "report.html"
        tooltrial = [sys.executable, "-m", "tooltrial"]
        env_off = {"LANGSMITH_TRACING": "false"}
        run = [
            *tooltrial,
            "run",
            "tests/experiment",
            "--results",
            str(results),
            "--order-seed",
            "1",
        ]
        subprocess.run(run, cwd=ROOT, check=True, env={**_env(), **env_off})
        subprocess.run([*tooltrial, "report", str(results), "-o", str(page)], cwd=ROOT, check=True)
        subprocess.run(
            [
                *(browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"),
                *(f"--screenshot={PICTURE}", "--window-size=1200,1500", page.as_uri()),
            ],
            check=True,
            capture_output=True,
        )
    print(f"{PICTURE.relative_to(ROOT)}: a report of the sample experiment on the embedded model")


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "TOOLTRIAL_MODEL"}


if __name__ == "__main__":
    main()
