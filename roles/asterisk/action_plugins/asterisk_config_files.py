"""Render the role's config templates on the controller, then write them in one module run.

Why not `files: "{{ query('ansible.builtin.template', ...) }}"`: the template lookup deep-copies
every variable of the host for each file, and each PBX's variables hold the class's plan (every
pod's description and views). Measured on the bench's 8-pod re-run (bench/pods.py), that copy
was 6 s of the controller's 15 s of CPU in the config task, and it grows with the square of the
class. This renders each template as ansible.builtin.template does, without copying the host's
variables, with the same options (trim_blocks, no lstrip_blocks, "\n" line ends); the
templates use no template_* variable nor ansible_managed, which are left out.
"""

from __future__ import annotations

import os
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.template import trust_as_template


def template_path(name: str) -> str:
    """The template of a config file mirrors its target under templates/: pjsip.conf is
    etc/asterisk/pjsip.conf.j2, /etc/fail2ban/jail.d/asterisk-lab.local is
    etc/fail2ban/jail.d/asterisk-lab.local.j2."""
    target = name if name.startswith("/") else f"/etc/asterisk/{name}"
    return f"{target.lstrip('/')}.j2"


class ActionModule(ActionBase):
    """asterisk_config_files with `templates`: each named file's content is its template,
    rendered here with the host's variables, added to `files` for the module."""

    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        names = args.pop("templates", None) or []
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise AnsibleActionFail(f"templates: expected a list of file names, got {names!r}")
        files = dict(args.get("files") or {})
        for name in names:
            files[name] = self._render(template_path(name), task_vars)
        args["files"] = files
        result.update(self._execute_module(module_name="asterisk_config_files", module_args=args,
                                           task_vars=task_vars))
        return result

    def _render(self, relative: str, task_vars: dict[str, Any]) -> str:
        source = self._find_needle("templates", relative)
        searchpath = [*task_vars.get("ansible_search_path", []), self._loader.get_basedir(), os.path.dirname(source)]
        templar = self._templar.copy_with_new_env(
            searchpath=[path for base in searchpath for path in (os.path.join(base, "templates"), base)],
            available_variables=task_vars,
        )
        text = trust_as_template(self._loader.get_text_file_contents(source))
        rendered = templar.template(text, escape_backslashes=False, overrides={"trim_blocks": True})
        return "" if rendered is None else str(rendered)
