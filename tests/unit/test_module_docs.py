"""ansible-doc shows every module of the project: a colon followed by a space in a plain YAML
line of DOCUMENTATION, or a missing description, makes it refuse the module outright."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from entry_point import ROOT

MODULES = sorted(ROOT.glob("roles/*/library/*.py")) + sorted(ROOT.glob("playbooks/library/*.py"))


@pytest.mark.parametrize("module", MODULES, ids=[path.stem for path in MODULES])
def test_ansible_doc_shows_the_module(module: Path) -> None:
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "-M", str(module.parent), module.stem],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1"),
    )
    assert done.returncode == 0 and "ERROR" not in done.stderr, done.stderr
    assert f"> MODULE {module.stem} ({module})" in done.stdout
    assert "OPTIONS" in done.stdout and "EXAMPLES" in done.stdout, done.stdout[:2000]
