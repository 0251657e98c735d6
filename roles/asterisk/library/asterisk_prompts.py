#!/usr/bin/python
"""Install the lab's missing prompts once: a supplied audio file, or its text spoken into a file
Asterisk plays without transcoding."""

from __future__ import annotations

DOCUMENTATION = r"""
module: asterisk_prompts
short_description: Install missing voice prompts from a supplied file or their text, never replacing one
description:
  - Makes the prompt folder (owned by the Asterisk user, so that Record() can write there).
  - For each prompt that has no file in the folder yet, in any format, installs its supplied
    audio file as <name>.wav, or speaks its text with espeak-ng and converts it with sox to
    8 kHz mono 16-bit WAV, the rate of G.711 calls.
  - A prompt that exists (generated earlier, supplied, or recorded by phone) is left alone,
    so a re-run only lists a folder; the names of the prompts made are returned.
  - The role's action plugin (action_plugins/asterisk_prompts.py) runs this module only when
    a prompt is missing or the folder's owner, group or mode differs (when all three are
    given), as the role's package task found the folder (O(found)).
options:
  directory:
    description: Prompt folder, e.g. /var/lib/asterisk/sounds/custom.
    type: path
    required: true
  prompts:
    description:
      - Each prompt, by name (the file is <name>.wav) - C(text), to speak, or C(file), an audio
        file on the controller (relative to O(files_dir)), as the lab description gives them.
        A plain string is a text.
      - The action plugin sends the module the texts, and the paths on the host of the audio
        files it copied there (C(files)), for the missing prompts only.
    type: dict
    required: true
  files_dir:
    description: Folder on the controller that the C(file) of a prompt is relative to.
    type: path
    default: ""
  files:
    description:
      - The audio file on the host of each missing supplied prompt, by name, moved into place
        as <name>.wav. The action plugin sets it after copying the files there; give
        O(prompts) instead.
    type: dict
    default: {}
  found:
    description:
      - What is at the folder's path on the host - its C(mode), C(owner), C(group) and
        C(entries), or null - as the role's package task found it
        (O(asterisk_packages#module:look_at_folders)), by path. Without an entry for
        O(directory), the module runs and looks itself. The module itself never reads it.
    type: dict
    default: {}
  voice:
    description: espeak-ng voice, e.g. fr or en.
    type: str
    default: en
  owner:
    description: Owner of the folder and the files made.
    type: str
    default: asterisk
  group:
    description: Group of the folder and the files made.
    type: str
    default: asterisk
  mode:
    description: Mode of the folder (the files made are 0644).
    type: str
    default: "0755"
author: asterisk-lab
"""

EXAMPLES = r"""
- name: Install the menus a new lab starts with
  asterisk_prompts:
    directory: /var/lib/asterisk/sounds/custom
    voice: fr
    files_dir: /srv/lab
    prompts:
      menu1:
        text: "Merci de bien vouloir presser une touche ou d'attendre votre tour."
      menu2:
        file: prompts/menu2.wav
"""

RETURN = r"""
made:
  description: Names of the prompts installed or spoken by this run.
  type: list
  elements: str
  returned: always
"""

import glob
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "directory": {"type": "path", "required": True},
            "prompts": {"type": "dict", "required": True},
            # Set by the action plugin: audio files it copied to the host, by prompt name.
            "files": {"type": "dict", "default": {}},
            "voice": {"type": "str", "default": "en"},
            "owner": {"type": "str", "default": "asterisk"},
            "group": {"type": "str", "default": "asterisk"},
            "mode": {"type": "str", "default": "0755"},
        },
        supports_check_mode=True,
    )
    params = module.params
    directory = params["directory"]
    folder = module.load_file_common_arguments(
        {"path": directory, "owner": params["owner"], "group": params["group"], "mode": params["mode"]}
    )
    changed = False
    if not os.path.isdir(directory):
        changed = True
        if not module.check_mode:
            os.makedirs(directory)
    if os.path.isdir(directory):
        changed = module.set_fs_attributes_if_different(folder, changed)

    missing = [
        name
        for name in sorted({*params["prompts"], *params["files"]})
        if not glob.glob(os.path.join(glob.escape(directory), glob.escape(name) + ".*"))
    ]
    if missing and not module.check_mode:
        with tempfile.TemporaryDirectory() as work:
            for name in missing:
                target = os.path.join(directory, name + ".wav")
                if name in params["files"]:
                    module.atomic_move(params["files"][name], target)
                    set_prompt_attributes(module, target)
                    continue
                spoken = os.path.join(work, name + ".22k.wav")
                ready = os.path.join(work, name + ".wav")
                # The text goes on stdin: on the command line, a text starting with "-"
                # would be read as an option.
                module.run_command(
                    ["espeak-ng", "-v", params["voice"], "-w", spoken, "--stdin"],
                    data=params["prompts"][name], check_rc=True,
                )
                module.run_command(
                    ["sox", spoken, "-r", "8000", "-c", "1", "-b", "16", "-e", "signed-integer",
                     ready, "gain", "-n", "-3"],
                    check_rc=True,
                )
                module.atomic_move(ready, target)
                set_prompt_attributes(module, target)
    module.exit_json(changed=changed or bool(missing), made=missing)


def set_prompt_attributes(module: AnsibleModule, path: str) -> None:
    """A prompt file: the folder's owner and group, readable by all."""
    module.set_fs_attributes_if_different(
        module.load_file_common_arguments(
            {"path": path, "owner": module.params["owner"], "group": module.params["group"], "mode": "0644"}
        ),
        True,
    )


if __name__ == "__main__":
    main()
