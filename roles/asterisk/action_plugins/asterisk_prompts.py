"""Run the module (library/asterisk_prompts.py) only when a prompt is missing from the prompt
folder or the folder's owner, group or mode is not the one asked, as the role's package task
found the folder (`found`, from its one shell command: action_plugins/asterisk_packages.py);
then copy to the PBX the supplied audio files of the missing prompts only.

Why: a module run costs a PBX about 0.4 s of CPU whatever it does (importing Ansible's
module_utils from the module's zip, with no bytecode), and a re-run of a lab whose prompts
all exist has nothing to do but look at the folder, which the package task already did.
Without `found` for the folder (a run with --tags prompts, or this action used alone), the
module runs and looks itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

def read_folder(there: Any) -> tuple[tuple[int, str, str] | None, list[str]]:
    """The folder's (mode, owner, group) and its files, from what the package task found at
    its path ({mode, owner, group, entries}; None when there is no folder: None, [])."""
    if not isinstance(there, Mapping):
        return None, []
    try:
        attributes = (int(str(there["mode"]), 8), str(there["owner"]), str(there["group"]))
    except (KeyError, ValueError):
        return None, []
    return attributes, [str(entry) for entry in there.get("entries") or []]


def missing_prompts(files: list[str], names: list[str]) -> list[str]:
    """The prompts with no file <name>.<format> among `files` (a recording of any format counts,
    as in the module)."""
    return [name for name in names if not any(file.startswith(f"{name}.") for file in files)]


def folder_attributes(mode: str, owner: str, group: str) -> tuple[int, str, str] | None:
    """The folder's attributes as read_folder gives them; None for a mode that is not octal
    digits, which the module compares as it can."""
    try:
        return int(mode, 8), owner, group
    except ValueError:
        return None


def split_prompts(prompts: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """(text by name, supplied file by name) of the lab description's prompts: each is
    {text: ...} or {file: ...}; a plain string is a text."""
    texts: dict[str, str] = {}
    files: dict[str, str] = {}
    for name, prompt in prompts.items():
        if isinstance(prompt, Mapping) and prompt.get("file"):
            files[name] = str(prompt["file"])
        elif isinstance(prompt, Mapping) and "text" in prompt:
            texts[name] = str(prompt["text"])
        elif isinstance(prompt, str):
            texts[name] = prompt
        else:
            raise AnsibleActionFail(f"prompts.{name}: expected text or file, got {prompt!r}")
    return texts, files


class ActionModule(ActionBase):
    """asterisk_prompts: the module runs only when the folder listing shows work to do, with
    the supplied audio files it needs copied to the PBX first."""

    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        if not isinstance(args.get("prompts"), Mapping):
            raise AnsibleActionFail(f"prompts: expected a mapping of prompt names, got {args.get('prompts')!r}")
        texts, files = split_prompts(args["prompts"])
        files_dir = str(args.pop("files_dir", "") or "")
        # Without the folder's attributes named, the module's defaults apply: let it compare.
        named = all(isinstance(args.get(key), str) and args[key] for key in ("directory", "owner", "group", "mode"))
        missing = list(args["prompts"])
        found = args.pop("found", None)
        if named and isinstance(found, Mapping) and args["directory"] in found:
            attributes, present = read_folder(found[args["directory"]])
            missing = missing_prompts(present, missing)
            if not missing and attributes == folder_attributes(args["mode"], args["owner"], args["group"]):
                result.update(changed=False, made=[])
                return result
        try:
            args.update(
                prompts=texts,
                files=self._send_files({name: path for name, path in files.items() if name in missing}, files_dir),
            )
            result.update(self._execute_module(module_name="asterisk_prompts", module_args=args, task_vars=task_vars))
        finally:
            if self._connection._shell.tmpdir is not None:
                self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _send_files(self, files: dict[str, str], files_dir: str) -> dict[str, str]:
        """Each supplied file copied to a temporary folder on the PBX, by prompt name (in check
        mode nothing is copied: the module only says what it would install)."""
        sent: dict[str, str] = {}
        for name, relative in files.items():
            source = self._find_needle("files", relative if relative.startswith("/") else f"{files_dir}/{relative}")
            if self._task.check_mode:
                sent[name] = source
                continue
            if self._connection._shell.tmpdir is None:
                self._make_tmp_path()
            sent[name] = self._connection._shell.join_path(self._connection._shell.tmpdir, f"{name}.wav")
            self._transfer_file(source, sent[name])
        if sent and not self._task.check_mode:
            self._fixup_perms2([self._connection._shell.tmpdir, *sent.values()])
        return sent
