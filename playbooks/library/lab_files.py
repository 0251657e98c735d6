#!/usr/bin/python
"""Write many small files in one module run: the class's credentials, cards and phone
settings on the controller.

One `copy` task per file costs about a second each (a pod's 15 phone files, 14 s of every
first provision); this writes them all in one run, each atomically with its mode, and
leaves a file that already holds its content alone. With folder_mode it also makes their
folder private, where ansible.builtin.file would be one more module run. On the controller
(delegate_to: localhost, no become) the action plugin of the same name does the same
in-process: no module run at all.
"""

from __future__ import annotations

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: lab_files
short_description: Write many files, each only when its content or mode differs.
description:
  - Writes each file of O(files) atomically with O(mode), and leaves a file that already holds
    its content and mode alone, in one module run.
  - On the controller (delegate_to localhost, no become) the action plugin of the same name
    does the same in-process, with no module run at all.
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

EXAMPLES = r"""
- name: Write each pod's card beside the credentials file, private
  lab_files:
    files:
      credentials/classroom-pod1.html: "{{ card }}"
    mode: "0600"
    folder_mode: "0700"
  delegate_to: localhost
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


def apply(files: dict, mode: str, folder_mode: str | None, check_mode: bool) -> dict:
    """Write what differs (nothing in check mode); the result the task reports. The action
    plugin of the same name (playbooks/action_plugins) calls it in-process when the files are
    the controller's own."""
    file_mode = int(mode, 8)
    private = None if folder_mode is None else int(folder_mode, 8)
    folders = sorted({os.path.dirname(os.path.abspath(path)) for path in files})
    made = [] if private is None else [folder for folder in folders if not folder_is(folder, private)]
    changed = sorted(path for path, content in files.items() if not current(path, str(content).encode(), file_mode))
    if not check_mode:
        for folder in made:
            make_folder(folder, private)
        for path in changed:
            write(path, str(files[path]).encode(), file_mode)
    return {"changed": bool(changed or made), "written": changed, "folders": made}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "dict", "required": True, "no_log": True},
            "mode": {"type": "str", "default": "0600"},
            "folder_mode": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    module.exit_json(**apply(params["files"], params["mode"], params["folder_mode"], module.check_mode))


if __name__ == "__main__":
    main()
