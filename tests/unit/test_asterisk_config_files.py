"""The role's module that writes every config file in one run (roles/asterisk/library)."""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

MODULE = Path(__file__).resolve().parents[2] / "roles" / "asterisk" / "library" / "asterisk_config_files.py"


def run_module(tmp_path: Path, files: dict[str, str], check_mode: bool = False, **extra: Any) -> dict[str, Any]:
    args = {
        "directory": str(tmp_path),
        "files": files,
        "secret_files": ["pjsip.conf"],
        "owner": pwd.getpwuid(os.getuid()).pw_name,
        "group": grp.getgrgid(os.getgid()).gr_name,
        "mode": "0640",
        "_ansible_check_mode": check_mode,
        "_ansible_diff": True,
        **extra,
    }
    arguments = tmp_path.parent / f"{tmp_path.name}-args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, str(MODULE), str(arguments)], capture_output=True, text=True)
    return json.loads(done.stdout)


def test_writes_what_changed_and_reports_it(tmp_path: Path) -> None:
    files = {"pjsip.conf": "[amine]\npassword=s3cret\n", "extensions.conf": "[from-internal]\n"}
    first = run_module(tmp_path, files)
    assert first["changed"] and sorted(first["changed_files"]) == ["extensions.conf", "pjsip.conf"]
    assert (tmp_path / "extensions.conf").read_text() == "[from-internal]\n"
    assert oct((tmp_path / "pjsip.conf").stat().st_mode & 0o777) == "0o640"
    again = run_module(tmp_path, files)
    assert not again["changed"] and again["changed_files"] == []
    files["extensions.conf"] = "[from-internal]\nexten => 600,1,Echo()\n"
    third = run_module(tmp_path, files)
    assert third["changed_files"] == ["extensions.conf"]


def test_never_shows_a_secret_in_the_diff(tmp_path: Path) -> None:
    result = run_module(tmp_path, {"pjsip.conf": "password=s3cret\n"})
    assert "s3cret" not in json.dumps(result)


def test_check_mode_writes_nothing(tmp_path: Path) -> None:
    result = run_module(tmp_path, {"rtp.conf": "[general]\n"}, check_mode=True)
    assert result["changed_files"] == ["rtp.conf"]
    assert not (tmp_path / "rtp.conf").exists()


def test_an_absolute_name_writes_outside_the_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "jail.d"
    elsewhere.mkdir()
    target = elsewhere / "asterisk-lab.local"
    (tmp_path / "etc").mkdir()
    result = run_module(tmp_path / "etc", {str(target): "[asterisk]\n"})
    assert result["changed_files"] == [str(target)]
    assert target.read_text() == "[asterisk]\n"
