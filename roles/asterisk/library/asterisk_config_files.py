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
  - With C(--diff), shows the line diff of every changed file, in check mode too. On the lines
    of a file that O(secret_lines) marks, the secret value is replaced by C(<hidden>), or by
    C(<hidden old value>) and C(<hidden new value>) on a line that changed, so a changed
    secret shows as a changed line and neither value is shown. Old secrets, which no
    parameter names, are hidden the same way.
  - The result, its C(invocation) (shown with C(-vvv)) and the module's log on the host never
    carry a file's content unmasked.
options:
  directory:
    description: Folder that holds the files.
    type: path
    required: true
  files:
    description:
      - Content of each file, by file name (relative to O(directory)) or absolute path.
      - Never logged as given; the result shows it with its secret lines masked.
    type: dict
    default: {}
  templates:
    description:
      - Files whose content is the role's template that mirrors the file's path, rendered on
        the controller with the host's variables by the role's action plugin and added to
        O(files). C(pjsip.conf) is C(templates/etc/asterisk/pjsip.conf.j2),
        C(/etc/fail2ban/jail.d/x.local) is C(templates/etc/fail2ban/jail.d/x.local.j2).
    type: list
    elements: str
    default: []
  found:
    description:
      - What is at each file's path on the host, by path - its C(mode) (octal digits), C(owner),
        C(group) and C(sha256), or null - as the role's package task found it
        (O(asterisk_packages#module:look_at_files)). The action plugin compares the rendered
        files with it and runs this module only when one differs; without an entry for every
        file, the module runs and compares. The module itself never reads it.
    type: dict
    default: {}
  start:
    description:
      - Services to start now and at boot once the files are written, so that they read them -
        those the role's package task found stopped or not enabled. The action plugin starts
        each with M(ansible.builtin.service), as a task of its own would; the module itself
        never reads it.
    type: list
    elements: str
    default: []
  packages_installed:
    description:
      - The packages the role's package task installed, or in check mode would have installed
        (RV(asterisk_packages#module:installed)). In check mode, when there are any, the
        services of O(start) are reported started without being asked - the install was
        pretended, and they are not there yet. The module itself never reads it.
    type: list
    elements: str
    default: []
  secret_lines:
    description:
      - For each file that holds secrets, by its name in O(files), a regular expression
        (Python, searched in each line) that matches the lines holding a secret. Its named
        group C(secret) is the part to hide; a line that matches without that group is hidden
        whole.
      - Masking by line rather than by value hides old secrets and secrets printed escaped
        (C(\;)) as well as current ones.
    type: dict
    default: {}
  secrets:
    description:
      - The secret values the files hold. Never logged. Those of at least 8 characters are
        also masked (C(********)) wherever they occur in the result, should a file print one
        on a line O(secret_lines) does not match; shorter ones (voicemail PINs) are hidden by
        O(secret_lines) only, as masking every occurrence of a 4-digit PIN would also blank
        an extension or a port that happens to have the same digits.
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
    secret_lines:
      pjsip.conf: '^\s*password\s*=(?P<secret>.*)$'
    secrets: "{{ asterisk_pbx.users | map(attribute='secret') | list }}"
"""

RETURN = r"""
changed_files:
  description: Names of the files whose content, owner, group or mode changed.
  type: list
  elements: str
  returned: always
started:
  description: Those of O(start) that this run started or enabled (in check mode, would have).
  type: list
  elements: str
  returned: always
diff:
  description:
    - One entry per change (before_header, after_header, before, after), as Ansible's
      C(--diff) prints them; secret values masked as described above.
  type: list
  elements: dict
  returned: in diff mode
"""

import difflib
import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any

from ansible.module_utils.basic import AnsibleModule

HIDDEN = "<hidden>"
HIDDEN_OLD = "<hidden old value>"
HIDDEN_NEW = "<hidden new value>"
# A secret this long does not occur by chance in a config file, so Ansible may mask every
# occurrence of it; a shorter one (a PIN) may equal an extension, a port, a time.
SUBSTRING_MASK_MIN_LENGTH = 8
NOT_SHOWN = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"


def secret_pattern(pattern: str) -> re.Pattern[str]:
    """`pattern` compiled; it must name the part of a line to hide (group `secret`)."""
    compiled = re.compile(pattern)
    if "secret" not in compiled.groupindex:
        raise ValueError(f"{pattern!r} has no group (?P<secret>...) naming the value to hide")
    return compiled


def mask_line(line: str, pattern: re.Pattern[str] | None, marker: str = HIDDEN) -> str:
    """`line` with the secret that `pattern` finds in it replaced by `marker`."""
    body = line.rstrip("\r\n")
    match = pattern.search(body) if pattern else None
    if not match:
        return line
    start, end = match.span("secret")
    if start < 0:  # the line matched without the group: hide the whole line
        start, end = 0, len(body)
    return body[:start] + marker + body[end:] + line[len(body):]


def mask_text(text: str, pattern: re.Pattern[str] | None) -> str:
    """`text` with every secret value that `pattern` finds replaced by <hidden>."""
    return "".join(mask_line(line, pattern) for line in text.splitlines(keepends=True))


def masked_pair(before: str, after: str, pattern: re.Pattern[str] | None) -> tuple[str, str]:
    """`before` and `after` masked for a diff: no secret value is left, and a secret line
    that changed (its value, or the line moved) still differs between the two.

    Lines that stay the same get <hidden> on both sides; in a changed stretch, secret values
    become <hidden old value> before and <hidden new value> after.
    """
    if pattern is None:
        return before, after
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    shown_old: list[str] = []
    shown_new: list[str] = []
    # autojunk off: blank lines are frequent, and must match as themselves.
    matcher = difflib.SequenceMatcher(None, old, new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        same = tag == "equal"
        shown_old += [mask_line(line, pattern, HIDDEN if same else HIDDEN_OLD) for line in old[i1:i2]]
        shown_new += [mask_line(line, pattern, HIDDEN if same else HIDDEN_NEW) for line in new[j1:j2]]
    return "".join(shown_old), "".join(shown_new)


def _current(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write(path: str, content: bytes, module: AnsibleModule) -> None:
    """Replace `path` by `content` at once: readers see the old file or the new one."""
    handle, temporary = tempfile.mkstemp(dir=os.path.dirname(path), prefix=f".{os.path.basename(path)}.")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(content)
        module.atomic_move(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def _mask_only_secrets(module: AnsibleModule, files: Mapping[str, Any], secrets: list[str]) -> None:
    """Narrow Ansible's masking of the result to the long secret values.

    `files` is no_log so that Ansible never logs the contents (its log masks only the given
    values, not an old secret or an escaped one). But Ansible also masks, everywhere in the
    result, each whole content and each no_log value as a substring: the diff would be one
    masked line per file, and a PIN would blank every equal extension. This module masks the
    secret lines itself instead.
    """
    module.no_log_values.difference_update(str(content) for content in files.values() if content)
    module.no_log_values.difference_update(s for s in secrets if len(s) < SUBSTRING_MASK_MIN_LENGTH)
    module.no_log_values.update(s for s in secrets if len(s) >= SUBSTRING_MASK_MIN_LENGTH)


def _attributes_diff(path: str, change: Mapping[str, Any]) -> dict[str, Any]:
    header = f"{path} (owner, group, mode)"
    return {"before_header": header, "after_header": header,
            "before": change.get("before", {}), "after": change.get("after", {})}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directory": {"type": "path", "required": True},
            "files": {"type": "dict", "default": {}, "no_log": True},
            "templates": {"type": "list", "elements": "str", "default": []},
            "secret_lines": {"type": "dict", "default": {}},
            "secrets": {"type": "list", "elements": "str", "default": [], "no_log": True},
            "owner": {"type": "str", "default": "root"},
            "group": {"type": "str", "default": "root"},
            "mode": {"type": "raw", "default": "0640"},
        },
        supports_check_mode=True,
    )
    params = dict(module.params)
    if params["templates"]:
        module.fail_json(msg="templates: rendered on the controller by the role's action plugin"
                             " (roles/asterisk/action_plugins); outside the role, give files instead")
    _mask_only_secrets(module, params["files"], params["secrets"])
    # Every result, a failure inside AnsibleModule too, shows module.params as its
    # invocation: from here on they hold no secret and no unmasked content.
    module.params.update(secrets=NOT_SHOWN, files=dict.fromkeys(params["files"], NOT_SHOWN))
    files = {name: str(content) if str(content).endswith("\n") else f"{content}\n"
             for name, content in params["files"].items()}
    try:
        unknown = sorted(set(params["secret_lines"]) - set(files))
        if unknown:
            raise ValueError(f"{', '.join(unknown)}: not in files; name each file as files does")
        patterns = {name: secret_pattern(str(pattern)) for name, pattern in params["secret_lines"].items()}
    except (re.error, ValueError) as error:
        module.fail_json(msg=f"secret_lines: {error}")
    module.params["files"] = {name: mask_text(content, patterns.get(name)) for name, content in files.items()}

    changed_files: list[str] = []
    diffs: list[dict[str, Any]] = []
    for name, content in files.items():
        path = os.path.join(params["directory"], name)
        before = _current(path)
        content_changed = before != content.encode("utf-8")
        if content_changed:
            if module._diff:
                old = before.decode("utf-8", errors="replace") if before is not None else ""
                shown_old, shown_new = masked_pair(old, content, patterns.get(name))
                diffs.append({"before_header": path, "after_header": path,
                              "before": shown_old, "after": shown_new})
            if not module.check_mode:
                try:
                    _write(path, content.encode("utf-8"), module)
                except OSError as error:
                    module.fail_json(msg=f"{path}: cannot write it: {error.strerror}",
                                     changed=bool(changed_files), changed_files=changed_files)
        # In check mode a file not yet written has no attributes to compare: it is new anyway.
        attributes_changed = False
        if os.path.exists(path):
            attributes = module.load_file_common_arguments(
                {"path": path, "owner": params["owner"], "group": params["group"], "mode": params["mode"]}
            )
            change: dict[str, Any] = {}
            attributes_changed = module.set_fs_attributes_if_different(attributes, False, diff=change)
            if attributes_changed and before is not None and module._diff:
                diffs.append(_attributes_diff(path, change))
        if content_changed or attributes_changed:
            changed_files.append(name)
    result: dict[str, Any] = {"changed": bool(changed_files), "changed_files": changed_files}
    if module._diff:
        result["diff"] = diffs
    module.exit_json(**result)


if __name__ == "__main__":
    main()
