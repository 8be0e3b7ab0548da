"""Docs that can't rot: every command in a ```sh runnable block of README.md and docs/*.md runs.

The convention: a fenced block whose info string is `sh runnable` holds commands, one a line;
each line that starts with `tppbench ` is run on the CPU from the repository root, as
`python -m bench ...`, with `$OUT` replaced by a fresh folder. A command passes when it exits 0
(or with the exit code written after it as `# exit N`) and prints no traceback. Blocks marked
plain `sh` are examples (GPU hosts, clusters) and are not run."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```sh runnable\n(.*?)^```", re.S | re.M)
EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


def runnable_commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for block in BLOCK.findall(page.read_text()):
            for line in block.splitlines():
                if line.startswith("tppbench "):
                    found.append((str(page.relative_to(ROOT)), line))
    return found


COMMANDS = runnable_commands()


def test_the_docs_mark_commands_as_runnable():
    pages = {page for page, _ in COMMANDS}
    assert "README.md" in pages and len(pages) >= 5, pages
    assert len(COMMANDS) >= 15


@pytest.mark.parametrize("page,line", COMMANDS, ids=[f"{p}: {c[:60]}" for p, c in COMMANDS])
def test_runnable_command(page, line, tmp_path):
    expected = 0
    match = EXIT.search(line)
    if match:
        expected, line = int(match.group(1)), line[: match.start()]
    argv = [a.replace("$OUT", str(tmp_path)) for a in shlex.split(line)][1:]
    proc = subprocess.run([sys.executable, "-m", "bench", *argv], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == expected, f"{page}: {line}\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
