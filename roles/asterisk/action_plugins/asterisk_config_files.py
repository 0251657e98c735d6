"""Render the role's config templates on the controller, ask the PBX in one shell command
whether its files already say that, and write them in one module run only when one differs.

Why not `files: "{{ query('ansible.builtin.template', ...) }}"`: the template lookup deep-copies
every variable of the host for each file, and each PBX's variables hold the class's plan (every
pod's description and views). Measured on the bench's 8-pod re-run (bench/pods.py), that copy
was 6 s of the controller's 15 s of CPU in the config task, and it grows with the square of the
class. This renders each template as ansible.builtin.template does, without copying the host's
variables, with the same options (trim_blocks, no lstrip_blocks, "\n" line ends); the
templates use no template_* variable nor ansible_managed, which are left out.

Compiled once, kept between runs: compiling the templates (Jinja's parser, code generator
and Python's compile) was 80 % of rendering them, about 60 ms of a PBX's every run, in a
worker process forked for the task that keeps nothing. Each is included from a one-line
template through Jinja's bytecode cache (TemplateCodeCache): a folder of this user's own in
the temp dir (Jinja's checks: owned by the user, mode 0700), keyed by the template's path,
its source's checksum, Python's, Jinja's and ansible-core's versions, and the options.

Why compare first: a module run costs a PBX about 0.4 s of CPU whatever it does (importing
Ansible's module_utils from the module's zip, with no bytecode), and on the bench's
idempotent re-run module runs were most of the machine's CPU. The role's package task has
already asked the PBX, in its one shell command, for each file's mode, owner, group and
sha256 (`found`, from action_plugins/asterisk_packages.py): when every file is as rendered,
the module does not run, and nothing of a file's content crosses to the PBX. Without `found`
for every file (a run with --tags config, or this action used alone), the module runs and
compares the files itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from typing import Any

import jinja2
from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase
from ansible.release import __version__ as ansible_version
from ansible.template import trust_as_template

# What ansible.builtin.template renders a file with, that the compiled code depends on.
TEMPLATE_OPTIONS = {"trim_blocks": True}


def template_path(name: str) -> str:
    """The template of a config file mirrors its target under templates/: pjsip.conf is
    etc/asterisk/pjsip.conf.j2, /etc/fail2ban/jail.d/asterisk-lab.local is
    etc/fail2ban/jail.d/asterisk-lab.local.j2."""
    target = name if name.startswith("/") else f"/etc/asterisk/{name}"
    return f"{target.lstrip('/')}.j2"


def as_file(content: str) -> str:
    """A file's content as the module writes it (library/asterisk_config_files.py, for files
    given directly too): ending with a newline."""
    return content if content.endswith("\n") else f"{content}\n"


def files_in_place(found: Mapping[str, Any], wanted: dict[str, str], owner: str, group: str, mode: Any) -> bool:
    """Whether every file of `wanted` (content by path) is in `found` (by path: its mode as
    octal digits, owner, group and sha256, as the package task's probe found it) with that
    content, owner, group and mode. A mode that is not octal digits is never in place here:
    the module then compares it as it can."""
    try:
        mode_bits = int(str(mode), 8)
    except ValueError:
        return False

    def in_place(there: Any, content: str) -> bool:
        if not isinstance(there, Mapping):
            return False
        try:
            same_mode = int(str(there.get("mode")), 8) == mode_bits
        except ValueError:
            return False
        return (same_mode and (there.get("owner"), there.get("group")) == (owner, group)
                and there.get("sha256") == hashlib.sha256(content.encode("utf-8")).hexdigest())  # fmt: skip

    return all(in_place(found.get(path), content) for path, content in wanted.items())


class TemplateCodeCache(jinja2.FileSystemBytecodeCache):
    """Jinja's bytecode cache in Jinja's private folder of the temp dir; its key also names
    what shapes the compiled code besides the source (whose checksum Jinja checks itself)."""

    def __init__(self) -> None:
        super().__init__(pattern="asterisk-lab-template-%s.cache")

    def get_cache_key(self, name: str, filename: str | None = None) -> str:
        shaped_by = f"ansible-core {ansible_version} jinja2 {jinja2.__version__} {sorted(TEMPLATE_OPTIONS.items())}"
        return super().get_cache_key(f"{name}|{shaped_by}", filename)


def template_code_cache() -> TemplateCodeCache | None:
    """The cache, or None (every template compiled, as before) when Jinja finds no safe folder."""
    try:
        return TemplateCodeCache()
    except (OSError, RuntimeError):
        return None


class ActionModule(ActionBase):
    """asterisk_config_files with `templates`: each named file's content is its template,
    rendered here with the host's variables, added to `files` for the module; then each
    service of `start` started and enabled, after its files are written."""

    TRANSFERS_FILES = False

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        task_vars = task_vars or {}
        result = self._write(tmp, task_vars)
        services = self._task.args.get("start") or []
        if not isinstance(services, list) or not all(isinstance(name, str) for name in services):
            raise AnsibleActionFail(f"start: expected a list of service names, got {services!r}")
        result["started"] = []
        if result.get("failed") or not services:
            return result
        if self._task.check_mode and self._task.args.get("packages_installed"):
            # The install was pretended: the services it brings are not there to ask (the
            # service module fails on a service it cannot find). A real run starts them.
            result.update(started=list(services), changed=True)
            return result
        for name in services:
            started = self._start(name, task_vars)
            if started.get("failed"):
                return {**result, "failed": True, "msg": f"starting {name} failed: {started.get('msg', '')}",
                        "service_result": started}
            if started.get("changed"):
                result["started"].append(name)
        result["changed"] = bool(result.get("changed") or result["started"])
        return result

    def _start(self, name: str, task_vars: dict[str, Any]) -> dict[str, Any]:
        """ansible.builtin.service, as a task of its own would run it: it chooses systemd or the
        init script by the host's service_mgr fact (the package task's, when a service was down)."""
        task = self._task.copy()
        task.args = {"name": name, "state": "started", "enabled": True}
        service = self._shared_loader_obj.action_loader.get(
            "ansible.legacy.service", task=task, connection=self._connection, play_context=self._play_context,
            loader=self._loader, templar=self._templar, shared_loader_obj=self._shared_loader_obj)  # fmt: skip
        return service.run(task_vars=task_vars)

    def _write(self, tmp: Any, task_vars: dict[str, Any]) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        args.pop("start", None)
        args.pop("packages_installed", None)
        names = args.pop("templates", None) or []
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise AnsibleActionFail(f"templates: expected a list of file names, got {names!r}")
        files = dict(args.get("files") or {})
        code_cache = template_code_cache() if names else None
        for name in names:
            files[name] = self._render(template_path(name), task_vars, code_cache)
        args["files"] = files
        found = args.pop("found", None)
        if self._in_place(args, found if isinstance(found, Mapping) else {}):
            result.update(changed=False, changed_files=[])
            if self._task.diff:
                result["diff"] = []
            return result
        result.update(self._execute_module(module_name="asterisk_config_files", module_args=args,
                                           task_vars=task_vars))
        return result

    def _in_place(self, args: dict[str, Any], found: Mapping[str, Any]) -> bool:
        """Whether the PBX's files already are what the module would make them, as found."""
        # Without every attribute named, the module's defaults apply: let it compare.
        if not all(args.get(key) for key in ("directory", "owner", "group", "mode")) or not args["files"]:
            return False
        wanted = {os.path.join(str(args["directory"]), name): as_file(str(content))
                  for name, content in args["files"].items()}
        return files_in_place(found, wanted, str(args["owner"]), str(args["group"]), args["mode"])

    def _render(self, relative: str, task_vars: dict[str, Any], code_cache: TemplateCodeCache | None) -> str:
        source = self._find_needle("templates", relative)
        searchpath = [*task_vars.get("ansible_search_path", []), self._loader.get_basedir(), os.path.dirname(source)]
        searchpath = [path for base in searchpath for path in (os.path.join(base, "templates"), base)]
        templar = self._templar.copy_with_new_env(searchpath=searchpath, available_variables=task_vars)
        # The private environment (ansible-core is pinned, requirements.txt): only Jinja's own
        # loading of an included file goes through a bytecode cache.
        environment = getattr(getattr(templar, "_engine", None), "environment", None)
        if code_cache is not None and environment is not None and source.endswith(f"/{relative}"):
            # The folder where it was found comes first, so that the include names that file.
            environment.loader.searchpath = [source[: -len(relative) - 1], *searchpath]
            environment.bytecode_cache = code_cache
            text = trust_as_template("{%% include %s %%}" % json.dumps(relative))
        else:
            text = trust_as_template(self._loader.get_text_file_contents(source))
        rendered = templar.template(text, escape_backslashes=False, overrides=TEMPLATE_OPTIONS)
        return "" if rendered is None else str(rendered)
