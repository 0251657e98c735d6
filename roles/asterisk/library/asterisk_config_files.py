#!/usr/bin/python
"""Write a set of Asterisk config files in one module run and say which ones changed."""

from __future__ import annotations

DOCUMENTATION = r"""
module: asterisk_config_files
short_description: Write several config files at once, reporting which changed
description:
  - Writes each file whose content differs, atomically, and enforces owner, group and mode.
  - One run for all files instead of one template task per file keeps an idempotent run fast,
    and the list of changed files tells the handlers which reload each change needs.
  - Files marked C(secret) are never shown in the diff.
options:
  directory:
    description: Folder that holds the files.
    type: path
    required: true
  files:
    description: Content of each file, by file name (relative to O(directory)) or absolute path.
    type: dict
    required: true
  secret_files:
    description: Names of the files that hold secrets; their diff is never shown.
    type: list
    elements: str
    default: []
  owner:
    description: Owner of every file.
    type: str
    default: root
  group:
    description: Group of every file.
    type: str
    default: root
  mode:
    description: Mode of every file.
    type: raw
    default: "0640"
author: asterisk-lab
"""

EXAMPLES = r"""
- name: Write pjsip.conf and extensions.conf
  asterisk_config_files:
    directory: /etc/asterisk
    group: asterisk
    files:
      pjsip.conf: "{{ lookup('ansible.builtin.template', 'pjsip.conf.j2') }}"
      extensions.conf: "{{ lookup('ansible.builtin.template', 'extensions.conf.j2') }}"
    secret_files: [pjsip.conf]
"""

RETURN = r"""
changed_files:
  description: Names of the files whose content, owner, group or mode changed.
  type: list
  elements: str
  returned: always
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule


def _current(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directory": {"type": "path", "required": True},
            "files": {"type": "dict", "required": True, "no_log": True},
            "secret_files": {"type": "list", "elements": "str", "default": []},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "mode": {"type": "raw", "default": "0640"},
        },
        supports_check_mode=True,
    )
    params = module.params
    changed_files: list[str] = []
    diffs: list[dict[str, str]] = []
    for name, content in params["files"].items():
        if not content.endswith("\n"):
            content += "\n"
        path = os.path.join(params["directory"], name)
        before = _current(path)
        content_changed = before != content
        if content_changed:
            if name in params["secret_files"]:
                diffs.append({"before_header": path, "after_header": path,
                              "before": "(holds secrets: not shown)\n",
                              "after": "(holds secrets: changed)\n"})
            else:
                diffs.append({"before_header": path, "after_header": path,
                              "before": before or "", "after": content})
            if not module.check_mode:
                handle, temporary = tempfile.mkstemp(
                    dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}."
                )
                with os.fdopen(handle, "w", encoding="utf-8") as stream:
                    stream.write(content)
                module.atomic_move(temporary, path)
        attributes = module.load_file_common_arguments(
            {"path": path, "owner": params["owner"], "group": params["group"], "mode": params["mode"]}
        )
        attributes_changed = False
        if os.path.exists(path):
            attributes_changed = module.set_fs_attributes_if_different(attributes, False)
        if content_changed or attributes_changed:
            changed_files.append(name)
    module.exit_json(changed=bool(changed_files), changed_files=changed_files, diff=diffs)


if __name__ == "__main__":
    main()
