"""asterisk_prompts speaks each missing prompt's text without letting the text be read as an
option: the module runs as Ansible runs it, with stand-ins for espeak-ng and sox on PATH that
record what they were given."""

from __future__ import annotations

import grp
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path

import pytest
from entry_point import ROLE, module_runs, role_tasks

MODULE = ROLE / "library" / "asterisk_prompts.py"

# espeak-ng keeps its arguments and what came on stdin, and writes the file after -w; sox
# copies its input to its output (argument 10: sox IN -r 8000 -c 1 -b 16 -e signed-integer OUT ...).
ESPEAK = """#!/bin/sh
printf '%s\\n' "$@" > "$RECORD/espeak.args"
cat > "$RECORD/espeak.stdin"
while [ "$1" != "-w" ]; do shift; done
printf 'RIFF' > "$2"
"""
SOX = """#!/bin/sh
cp "$1" "${10}"
"""


@pytest.mark.parametrize("text", ["-w /tmp/elsewhere.wav --version", "Presser 1 pour l'accueil; $HOME `id`"])
def test_the_text_is_spoken_from_stdin_never_as_an_argument(tmp_path: Path, text: str) -> None:
    tools = tmp_path / "bin"
    tools.mkdir()
    for name, script in (("espeak-ng", ESPEAK), ("sox", SOX)):
        (tools / name).write_text(script)
        (tools / name).chmod(0o755)
    prompts = tmp_path / "custom"
    args = {"ANSIBLE_MODULE_ARGS": {
        "directory": str(prompts), "prompts": {"menu1": text}, "voice": "fr",
        "owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name,
    }}
    arguments = tmp_path / "args.json"
    arguments.write_text(json.dumps(args))
    env = dict(os.environ, PATH=f"{tools}:{os.environ['PATH']}", RECORD=str(tmp_path))
    done = subprocess.run([sys.executable, str(MODULE), str(arguments)], capture_output=True, text=True, env=env)
    result = json.loads(done.stdout)
    assert result["changed"] and result["made"] == ["menu1"], result
    given = (tmp_path / "espeak.args").read_text().splitlines()
    assert given[:2] == ["-v", "fr"] and given[-1] == "--stdin", given
    assert not any(text in argument for argument in given)
    assert (tmp_path / "espeak.stdin").read_text().rstrip("\n") == text
    assert (prompts / "menu1.wav").read_bytes() == b"RIFF"
    assert not Path("/tmp/elsewhere.wav").exists()


def test_a_supplied_file_is_copied_only_for_a_missing_prompt_and_a_re_run_runs_no_module(tmp_path: Path) -> None:
    tools, supplied, prompts = tmp_path / "bin", tmp_path / "supplied", tmp_path / "custom"
    tools.mkdir()
    supplied.mkdir()
    for name, script in (("espeak-ng", ESPEAK), ("sox", SOX)):
        (tools / name).write_text(script)
        (tools / name).chmod(0o755)
    (supplied / "welcome.wav").write_bytes(b"RIFF supplied")
    task = {"asterisk_prompts": {
        "directory": str(prompts), "owner": pwd.getpwuid(os.getuid()).pw_name,
        "group": grp.getgrgid(os.getgid()).gr_name, "mode": "0755", "voice": "fr", "files_dir": str(supplied),
        "prompts": {"menu1": {"file": "welcome.wav"}, "menu2": {"text": "Presser 1"}},
        "found": "{{ _asterisk_packages.found }}"}, "register": "made"}
    # As in the role: the package task's shell command looks at the folder first.
    look = {"asterisk_packages": {"packages": [], "proxy_file": str(tmp_path / "01proxy"),
                                  "look_at_folders": [str(prompts)]},
            "register": "_asterisk_packages"}  # fmt: skip

    def run(made: list[str], *options: str) -> int:
        done = role_tasks(tmp_path, [look, task, {"ansible.builtin.assert": {"that": f"made.made == {made}"}}],
                          *options, PATH=f"{tools}:{os.environ['PATH']}", RECORD=str(tmp_path))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return module_runs(tmp_path, "asterisk_prompts")

    assert run(["menu1", "menu2"], "--check") == 1 and not prompts.exists()
    assert run(["menu1", "menu2"]) == 2
    assert (prompts / "menu1.wav").read_bytes() == b"RIFF supplied" and (prompts / "menu2.wav").read_bytes() == b"RIFF"
    assert (prompts / "menu1.wav").stat().st_mode & 0o777 == 0o644
    assert run([]) == 2  # the package task's listing of the folder answered: no module ran
    # A student records menu1 by phone (another format): the supplied file never replaces it.
    (prompts / "menu1.wav").unlink()
    (prompts / "menu1.gsm").write_bytes(b"recorded")
    (prompts / "menu2.wav").unlink()
    assert run(["menu2"]) == 3
    assert sorted(path.name for path in prompts.iterdir()) == ["menu1.gsm", "menu2.wav"]
    assert (supplied / "welcome.wav").read_bytes() == b"RIFF supplied"
