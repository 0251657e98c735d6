"""lab_files on the controller without a module run: the class's credentials, cards and phone
settings are the controller's own files, so they are written in-process, as the controller's
user (a local module run cost 0.4 s a task, bench/pods.py). Anywhere else, or with become, the
module (library/lab_files.py) runs as usual; both write through the same functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

_MODULE = Path(__file__).resolve().parent.parent / "library" / "lab_files.py"


def _module() -> Any:
    spec = importlib.util.spec_from_file_location("lab_files_module", _MODULE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("files", "mode", "folder_mode"))

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        self._supports_check_mode = True
        result = super().run(tmp, task_vars)
        on_controller = self._connection.transport == "local" and not self._play_context.become
        if not on_controller:
            result.update(self._execute_module(module_name="lab_files", task_vars=task_vars))
            return result
        args = self._task.args
        files = args.get("files")
        if not isinstance(files, dict):
            raise AnsibleActionFail(f"files: expected a mapping of path to content, got {type(files).__name__}")
        try:
            result.update(_module().apply(files, str(args.get("mode", "0600")), args.get("folder_mode"),
                                          self._task.check_mode))  # fmt: skip
        except (OSError, ValueError) as error:
            raise AnsibleActionFail(f"lab_files: {error}") from error
        return result
