#!/usr/bin/python
"""Write many small files in one module run: the class's credentials, cards and phone
settings on the controller.

One `copy` task per file costs about a second each (a pod's 15 phone files, 14 s of every
first provision); this writes them all in one run, each atomically with its mode, and
leaves a file that already holds its content alone. With folder_mode it also makes their
folder private, where ansible.builtin.file would be one more module run.
"""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: lab_files
short_description: Write many files, each only when its content or mode differs.
options:
  files:
    description: Path to content. The content is never logged.
    type: dict
    required: true
  mode:
    description: Mode of every file.
    type: str
    default: "0600"
  folder_mode:
    description:
      - When set, the folder of each file is made (with its parents) if missing, and given
        this mode, before any file is written.
    type: str
"""


def current(path: str, content: bytes, mode: int) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read() == content and (os.stat(path).st_mode & 0o7777) == mode
    except OSError:
        return False


def write(path: str, content: bytes, mode: int) -> None:
    folder = os.path.dirname(path) or "."
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".lab_files-")
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "wb") as file:
            file.write(content)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def folder_is(path: str, mode: int) -> bool:
    try:
        return (os.stat(path).st_mode & 0o7777) == mode
    except OSError:
        return False


def make_folder(folder: str, mode: int) -> None:
    """Give the folder `mode`; a missing folder is made with each missing parent, every one
    of them with `mode`, as ansible.builtin.file makes them."""
    missing = []
    parent = folder
    while not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    for path in reversed(missing):
        os.mkdir(path, mode)
    for path in missing or [folder]:
        os.chmod(path, mode)  # mkdir's mode passes through the umask


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "dict", "required": True, "no_log": True},
            "mode": {"type": "str", "default": "0600"},
            "folder_mode": {"type": "str"},
        },
        supports_check_mode=True,
    )
    mode = int(module.params["mode"], 8)
    folder_mode = None if module.params["folder_mode"] is None else int(module.params["folder_mode"], 8)
    folders = sorted({os.path.dirname(os.path.abspath(path)) for path in module.params["files"]})
    made = [] if folder_mode is None else [folder for folder in folders if not folder_is(folder, folder_mode)]
    changed = sorted(
        path for path, content in module.params["files"].items()
        if not current(path, str(content).encode(), mode)
    )
    if not module.check_mode:
        for folder in made:
            make_folder(folder, folder_mode)
        for path in changed:
            write(path, str(module.params["files"][path]).encode(), mode)
    module.exit_json(changed=bool(changed or made), written=changed, folders=made)


if __name__ == "__main__":
    main()
