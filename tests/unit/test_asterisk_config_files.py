"""The role's module that writes every config file in one run (roles/asterisk/library).

It is run three ways: its functions directly, as a module process (the way Ansible starts it),
and inside `ansible-playbook --check --diff` on a folder of this machine, to read what an
instructor reads.
"""

from __future__ import annotations

import grp
import importlib.util
import json
import os
import pwd
import subprocess
import sys
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml
from entry_point import module_runs, role_tasks

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ROOT / "roles" / "asterisk" / "library"
MODULE = LIBRARY / "asterisk_config_files.py"
_spec = importlib.util.spec_from_file_location("asterisk_config_files", MODULE)
config_files = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(config_files)

# The patterns the role passes (roles/asterisk/vars/main.yml), by file name.
ROLE_FILES = yaml.safe_load((ROOT / "roles" / "asterisk" / "vars" / "main.yml").read_text())["asterisk_config_files"]
SECRET_LINES = {f["name"]: f["secret_lines"] for f in ROLE_FILES if "secret_lines" in f}
PJSIP = config_files.secret_pattern(SECRET_LINES["pjsip.conf"])
VOICEMAIL = config_files.secret_pattern(SECRET_LINES["voicemail.conf"])

OLD_PASSWORD = "0ldAmineSecretValue"
NEW_PASSWORD = "n3wAmine;Secret"  # printed escaped: n3wAmine\;Secret
NEW_PASSWORD_PRINTED = "n3wAmine\\;Secret"
OLD_PIN, NEW_PIN = "4321", "1001"  # the new PIN is also amine's extension


def pjsip(password: str) -> str:
    return f"[amine]\ntype=auth\nauth_type=userpass\nusername=amine\npassword={password}\n\n[amine]\ntype=aor\n"


def voicemail(pin: str) -> str:
    return f"[default]\n1001 => {pin},amine,,,attach=yes|delete=no\n"


def extensions(ring: int) -> str:
    return f"[from-internal]\nexten => 1001,1,Dial(PJSIP/amine,{ring})\n"


def me() -> dict[str, str]:
    return {"owner": pwd.getpwuid(os.getuid()).pw_name, "group": grp.getgrgid(os.getgid()).gr_name}


def run_module(tmp_path: Path, files: dict[str, str], check_mode: bool = False, **extra: Any) -> dict[str, Any]:
    args = {
        "directory": str(tmp_path),
        "files": files,
        "secret_lines": {name: SECRET_LINES[name] for name in files if name in SECRET_LINES},
        "secrets": [NEW_PASSWORD, NEW_PIN],
        **me(),
        "mode": "0640",
        "_ansible_check_mode": check_mode,
        "_ansible_diff": True,
        **extra,
    }
    arguments = tmp_path.parent / f"{tmp_path.name}-args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run([sys.executable, str(MODULE), str(arguments)], capture_output=True, text=True)
    return json.loads(done.stdout)


def printed_diff(result: dict[str, Any]) -> str:
    return "".join(entry["before"] + entry["after"] for entry in result["diff"] if isinstance(entry["after"], str))


def assert_no_secret(text: str) -> None:
    # The new PIN is also an extension: only its place on the mailbox line gives it away.
    for secret in (OLD_PASSWORD, NEW_PASSWORD, NEW_PASSWORD_PRINTED, OLD_PIN, f"=> {NEW_PIN},amine"):
        assert secret not in text, f"{secret!r} shown"


# ---- The masking, function by function

def test_a_secret_line_that_stays_shows_the_same_on_both_sides() -> None:
    before, after = config_files.masked_pair(pjsip("a") + "x=1\n", pjsip("a") + "x=2\n", PJSIP)
    assert "password=<hidden>\n" in before and "password=<hidden>\n" in after
    assert "x=1" in before and "x=2" in after


def test_a_changed_secret_shows_as_a_changed_line_without_either_value() -> None:
    before, after = config_files.masked_pair(pjsip(OLD_PASSWORD), pjsip(NEW_PASSWORD_PRINTED), PJSIP)
    assert "password=<hidden old value>\n" in before and "password=<hidden new value>\n" in after
    assert_no_secret(before + after)


def test_two_users_swapping_passwords_still_shows_both_lines_changed() -> None:
    old = "[a]\npassword=one-secret\n[b]\npassword=two-secret\n"
    new = "[a]\npassword=two-secret\n[b]\npassword=one-secret\n"
    before, after = config_files.masked_pair(old, new, PJSIP)
    assert_no_secret(before + after)
    assert "one-secret" not in before + after and "two-secret" not in before + after
    # Each user's section reads differently before and after: the diff shows both.
    assert before.split("[b]")[0] != after.split("[b]")[0]
    assert before.split("[b]")[1] != after.split("[b]")[1]


def test_a_voicemail_pin_is_hidden_and_its_mailbox_and_name_stay() -> None:
    line = config_files.mask_line("1001 => 1001,amine,,,attach=yes\n", VOICEMAIL)
    assert line == "1001 => <hidden>,amine,,,attach=yes\n"
    assert config_files.mask_line("[default]\n", VOICEMAIL) == "[default]\n"
    assert config_files.mask_line("minsecs=1\n", VOICEMAIL) == "minsecs=1\n"


@pytest.mark.parametrize("secret", ["=x", ">x", " x", "a\\;b", ""])
def test_everything_after_password_equals_is_hidden(secret: str) -> None:
    assert config_files.mask_line(f"password={secret}\n", PJSIP) == "password=<hidden>\n"


def test_a_line_matched_without_its_secret_group_is_hidden_whole() -> None:
    pattern = config_files.secret_pattern(r"^md5_cred=|^password=(?P<secret>.*)")
    assert config_files.mask_line("md5_cred=abcdef\n", pattern) == "<hidden>\n"


def test_a_pattern_must_name_the_secret() -> None:
    with pytest.raises(ValueError, match=r"\(\?P<secret>"):
        config_files.secret_pattern(r"^password=.*")


# ---- The module, as Ansible runs it

def test_writes_what_changed_and_reports_it(tmp_path: Path) -> None:
    files = {"pjsip.conf": pjsip(NEW_PASSWORD_PRINTED), "extensions.conf": "[from-internal]\n"}
    first = run_module(tmp_path, files)
    assert first["changed"] and sorted(first["changed_files"]) == ["extensions.conf", "pjsip.conf"]
    assert (tmp_path / "extensions.conf").read_text() == "[from-internal]\n"
    assert (tmp_path / "pjsip.conf").read_text() == pjsip(NEW_PASSWORD_PRINTED)
    assert oct((tmp_path / "pjsip.conf").stat().st_mode & 0o777) == "0o640"
    again = run_module(tmp_path, files)
    assert not again["changed"] and again["changed_files"] == [] and again["diff"] == []
    files["extensions.conf"] = "[from-internal]\nexten => 600,1,Echo()\n"
    third = run_module(tmp_path, files)
    assert third["changed_files"] == ["extensions.conf"]
    assert not list(tmp_path.glob(".*")), "a temporary file was left behind"


def test_the_diff_shows_the_lines_and_hides_only_the_secrets(tmp_path: Path) -> None:
    (tmp_path / "pjsip.conf").write_text(pjsip(OLD_PASSWORD))
    (tmp_path / "voicemail.conf").write_text(voicemail(OLD_PIN))
    (tmp_path / "extensions.conf").write_text(extensions(20))
    result = run_module(tmp_path, {"pjsip.conf": pjsip(NEW_PASSWORD_PRINTED), "voicemail.conf": voicemail(NEW_PIN),
                                   "extensions.conf": extensions(25)})
    diff = {Path(entry["before_header"]).name: entry for entry in result["diff"]}
    assert diff["extensions.conf"] == {"before_header": str(tmp_path / "extensions.conf"),
                                       "after_header": str(tmp_path / "extensions.conf"),
                                       "before": extensions(20), "after": extensions(25)}
    assert diff["pjsip.conf"]["before"] == pjsip("<hidden old value>")
    assert diff["pjsip.conf"]["after"] == pjsip("<hidden new value>")
    assert diff["voicemail.conf"]["after"] == voicemail("<hidden new value>")
    assert_no_secret(json.dumps(result))


def test_a_pin_equal_to_an_extension_does_not_blank_the_extension(tmp_path: Path) -> None:
    # Ansible would mask the PIN 1001 wherever it occurs, were it left to Ansible.
    result = run_module(tmp_path, {"extensions.conf": extensions(25), "voicemail.conf": voicemail(NEW_PIN)})
    assert "exten => 1001,1,Dial(PJSIP/amine,25)" in printed_diff(result)
    assert "1001 => <hidden new value>,amine" in printed_diff(result)
    assert "********" not in json.dumps(result)


def test_a_long_secret_printed_where_no_pattern_looks_is_still_masked(tmp_path: Path) -> None:
    result = run_module(tmp_path, {"extensions.conf": f"; amine's password is {NEW_PASSWORD}\n"})
    assert NEW_PASSWORD not in json.dumps(result) and "********" in printed_diff(result)


def test_the_invocation_shows_the_contents_masked_and_no_secret(tmp_path: Path) -> None:
    result = run_module(tmp_path, {"pjsip.conf": pjsip(NEW_PASSWORD_PRINTED), "voicemail.conf": voicemail(NEW_PIN)})
    module_args = result["invocation"]["module_args"]
    assert module_args["files"]["pjsip.conf"] == pjsip("<hidden>")
    assert module_args["files"]["voicemail.conf"] == voicemail("<hidden>")
    assert module_args["secrets"] == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"
    assert_no_secret(json.dumps(result))


def test_a_failure_inside_ansible_shows_no_secret_either(tmp_path: Path) -> None:
    result = run_module(tmp_path, {"pjsip.conf": pjsip(NEW_PASSWORD_PRINTED)}, group="no-such-group-here")
    assert result["failed"] and "group" in result["msg"]
    assert_no_secret(json.dumps(result))


def test_a_secret_pattern_for_no_file_is_refused(tmp_path: Path) -> None:
    result = run_module(tmp_path, {"pjsip.conf": pjsip(NEW_PASSWORD_PRINTED)},
                        secret_lines={"pjsip.cnf": SECRET_LINES["pjsip.conf"]})
    assert result["failed"] and "pjsip.cnf: not in files" in result["msg"]
    assert_no_secret(json.dumps(result))


def test_nothing_the_module_logs_on_the_host_holds_a_secret(tmp_path: Path) -> None:
    # AnsibleModule logs its parameters to the host's journal; record what it would send.
    arguments = tmp_path / "args.json"
    arguments.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": {
        "directory": str(tmp_path), "files": {"pjsip.conf": pjsip(NEW_PASSWORD_PRINTED), "voicemail.conf": voicemail(NEW_PIN)},
        "secret_lines": SECRET_LINES, "secrets": [NEW_PASSWORD, NEW_PIN], **me()}}))
    logged = tmp_path / "logged.txt"
    runner = (
        "import runpy, sys\n"
        "from ansible.module_utils.basic import AnsibleModule\n"
        f"AnsibleModule.log = lambda self, msg, log_args=None: open({str(logged)!r}, 'a').write(msg + repr(log_args))\n"
        f"sys.argv = [{str(MODULE)!r}, {str(arguments)!r}]\n"
        f"runpy.run_path({str(MODULE)!r}, run_name='__main__')\n"
    )
    subprocess.run([sys.executable, "-c", runner], capture_output=True, text=True, check=False)
    text = logged.read_text()
    assert "files=NOT_LOGGING_PARAMETER" in text
    assert_no_secret(text)


@pytest.mark.parametrize("case", ["new file", "content", "mode", "nothing"])
def test_check_mode_reports_changed_exactly_when_a_real_run_changes_and_writes_nothing(tmp_path: Path, case: str) -> None:
    target = tmp_path / "rtp.conf"
    if case != "new file":
        target.write_text("[general]\n" if case != "content" else "[general]\nrtpstart=10000\n")
        target.chmod(0o644 if case == "mode" else 0o640)
    snapshot = (target.read_bytes(), target.stat().st_mode) if target.exists() else None
    checked = run_module(tmp_path, {"rtp.conf": "[general]\n"}, check_mode=True)
    assert ((target.read_bytes(), target.stat().st_mode) if target.exists() else None) == snapshot
    real = run_module(tmp_path, {"rtp.conf": "[general]\n"})
    assert checked["changed"] == real["changed"] == (case != "nothing")
    assert checked["changed_files"] == real["changed_files"]
    assert target.read_text() == "[general]\n" and target.stat().st_mode & 0o777 == 0o640


def test_a_mode_only_change_shows_in_the_diff(tmp_path: Path) -> None:
    (tmp_path / "rtp.conf").write_text("[general]\n")
    (tmp_path / "rtp.conf").chmod(0o644)
    result = run_module(tmp_path, {"rtp.conf": "[general]\n"}, check_mode=True)
    assert result["diff"] == [{"before_header": f"{tmp_path / 'rtp.conf'} (owner, group, mode)",
                               "after_header": f"{tmp_path / 'rtp.conf'} (owner, group, mode)",
                               "before": {"mode": "0644"}, "after": {"mode": "0640"}}]


def test_an_absolute_name_writes_outside_the_directory(tmp_path: Path) -> None:
    elsewhere = tmp_path / "jail.d"
    elsewhere.mkdir()
    target = elsewhere / "asterisk-lab.local"
    (tmp_path / "etc").mkdir()
    result = run_module(tmp_path / "etc", {str(target): "[asterisk]\n"})
    assert result["changed_files"] == [str(target)]
    assert target.read_text() == "[asterisk]\n"


# ---- What an instructor reads: ansible-playbook --check --diff, then a real run

def play(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    task = {"asterisk_config_files": {
        "directory": str(tmp_path / "etc"), **me(),
        "files": {"pjsip.conf": pjsip(NEW_PASSWORD_PRINTED), "voicemail.conf": voicemail(NEW_PIN),
                  "extensions.conf": extensions(25)},
        "secret_lines": {"pjsip.conf": SECRET_LINES["pjsip.conf"], "voicemail.conf": SECRET_LINES["voicemail.conf"]},
        "secrets": [NEW_PASSWORD, NEW_PIN]}}
    playbook = tmp_path / "play.yml"
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": [task]}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_LIBRARY=str(LIBRARY),
               ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", *options, str(playbook)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_check_diff_shows_the_changed_lines_and_never_a_secret(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    old = {"pjsip.conf": pjsip(OLD_PASSWORD), "voicemail.conf": voicemail(OLD_PIN), "extensions.conf": extensions(20)}
    for name, content in old.items():
        (etc / name).write_text(content)
        (etc / name).chmod(0o640)

    checked = play(tmp_path, "--check", "--diff", "-vvv")
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]
    out = checked.stdout
    assert "-exten => 1001,1,Dial(PJSIP/amine,20)\n+exten => 1001,1,Dial(PJSIP/amine,25)\n" in out
    assert "-password=<hidden old value>\n+password=<hidden new value>\n" in out
    assert "-1001 => <hidden old value>,amine" in out and "+1001 => <hidden new value>,amine" in out
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER\n+" not in out and "holds secrets" not in out
    assert_no_secret(out + checked.stderr)
    assert "changed=1" in out
    assert {name: (etc / name).read_text() for name in old} == old

    applied = play(tmp_path, "--diff")
    assert applied.returncode == 0 and "changed=1" in applied.stdout
    assert "-password=<hidden old value>\n+password=<hidden new value>\n" in applied.stdout
    assert_no_secret(applied.stdout + applied.stderr)
    assert (etc / "pjsip.conf").read_text() == pjsip(NEW_PASSWORD_PRINTED)

    again = play(tmp_path, "--check", "--diff")
    assert again.returncode == 0 and "changed=0" in again.stdout and "+++ after" not in again.stdout


# ---- The role's templates print secrets only where its patterns look

def _load(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _rendered_with_known_secrets() -> tuple[dict[str, Any], list[str]]:
    """What the role's templates print for vm-a of the reference lab, and its secrets as printed."""
    lab_view = _load("_lab_view_for_config_files", ROOT / "plugins" / "filter" / "lab_view.py")
    filters: dict[str, Any] = {}
    for path in sorted((ROOT / "plugins" / "filter").glob("*.py")):
        filters.update(_load(f"_filter_{path.stem}", path).FilterModule().filters())
    lab = lab_view.lab_description({})
    secrets = {
        "users": {u["name"]: f"user;secret-of-{u['name']}" for u in lab["lab_users"]},
        "trunks": {t["name"]: f"trunk;secret-of-{t['name']}" for t in lab["lab_trunks"]},
        "pins": {u["name"]: f"86420{i}" for i, u in enumerate(lab["lab_users"])},
    }
    view = lab_view.lab_host_view(lab, "vm-a", {"vm-a": "10.0.0.153", "vm-b": "10.0.0.154"}, secrets)
    printed = [s.replace(";", "\\;") for kind in ("users", "trunks") for s in secrets[kind].values()]
    printed += [f"{pin}," for pin in secrets["pins"].values()]
    role_vars = yaml.safe_load((ROOT / "roles" / "asterisk" / "vars" / "main.yml").read_text())
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(ROOT / "roles" / "asterisk" / "templates"),
                             trim_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters.update(filters)
    return {"env": env, "context": {**role_vars, "asterisk_pbx": view}}, printed


@pytest.mark.parametrize("name", [f["name"] for f in ROLE_FILES])
def test_every_secret_a_template_prints_is_on_a_line_its_pattern_hides(name: str) -> None:
    templating, printed = _rendered_with_known_secrets()
    template = ("etc/asterisk/" + name if not name.startswith("/") else name[1:]) + ".j2"
    try:
        text = templating["env"].get_template(template).render(**templating["context"])
    except jinja2.UndefinedError as error:
        if name in SECRET_LINES:
            raise
        pytest.skip(f"{template} needs more than the host's view to render: {error}")
    pattern = config_files.secret_pattern(SECRET_LINES[name]) if name in SECRET_LINES else None
    if name in ("pjsip.conf", "voicemail.conf"):
        assert any(secret in text for secret in printed), "the test's secrets are not printed as expected"
    masked = config_files.mask_text(text, pattern)
    assert not [secret for secret in printed if secret in masked]


# ---- The role's action plugin: templates rendered on the controller, as template renders them

ACTION_PLUGINS = ROOT / "roles" / "asterisk" / "action_plugins"
TEMPLATE = """[general]
{% for user in users %}
; {{ user }}
{% endfor %}
rtpstart={{ first_port }}
rtpend={{ first_port + 10 }}
"""


def test_templates_render_as_the_template_module_renders_them(tmp_path: Path) -> None:
    etc, jail = tmp_path / "etc", tmp_path / "jail.d" / "asterisk-lab.local"
    etc.mkdir()
    jail.parent.mkdir()
    # Each template mirrors its target: rtp.conf is etc/asterisk/rtp.conf.j2, an absolute
    # path is itself under templates/.
    for template in (tmp_path / "templates/etc/asterisk/rtp.conf.j2",
                     tmp_path / "templates" / f"{str(jail).lstrip('/')}.j2"):  # fmt: skip
        template.parent.mkdir(parents=True, exist_ok=True)
        template.write_text(TEMPLATE)
    done = role_tasks(tmp_path, [
        {"asterisk_config_files": {"directory": str(etc), "templates": ["rtp.conf", str(jail)], **me()},
         "register": "written"},
        {"ansible.builtin.template": {"src": "etc/asterisk/rtp.conf.j2", "dest": str(tmp_path / "by-template")}},
        {"ansible.builtin.assert": {"that": "written.changed_files == ['rtp.conf', '%s']" % jail}},
    ], play_vars={"users": ["amine", "kaiba"], "first_port": "{{ 10000 + 0 }}"})
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    expected = (tmp_path / "by-template").read_text()
    assert "; amine\n; kaiba\nrtpstart=10000\nrtpend=10010\n" in expected
    assert (etc / "rtp.conf").read_text() == expected
    assert jail.read_text() == expected


def test_compiled_templates_are_kept_between_runs_and_never_outlive_their_source(tmp_path: Path) -> None:
    etc, temp = tmp_path / "etc", tmp_path / "temp"
    template = tmp_path / "templates/etc/asterisk/rtp.conf.j2"
    for folder in (etc, temp, template.parent):
        folder.mkdir(parents=True)
    task = [{"asterisk_config_files": {"directory": str(etc), "templates": ["rtp.conf"], **me()}}]

    def render(text: str) -> str:
        template.write_text(text)
        done = role_tasks(tmp_path, task, play_vars={"first_port": 10000}, TMPDIR=str(temp))
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return (etc / "rtp.conf").read_text()

    assert render("{% if first_port %}\nrtpstart={{ first_port }}\n{% endif %}\n") == "rtpstart=10000\n"
    cached = list(temp.glob("_jinja2-cache-*/asterisk-lab-template-*.cache"))
    assert len(cached) == 1, list(temp.rglob("*"))
    compiled = cached[0].stat().st_mtime_ns
    (etc / "rtp.conf").unlink()
    assert render("{% if first_port %}\nrtpstart={{ first_port }}\n{% endif %}\n") == "rtpstart=10000\n"
    assert cached[0].stat().st_mtime_ns == compiled  # the compiled code was read, not written again
    # An edited template is compiled again: the cache never renders its old source.
    assert render("rtpstart={{ first_port + 1 }}\n") == "rtpstart=10001\n"
    assert cached[0].stat().st_mtime_ns != compiled


def test_templates_without_the_role_are_refused_with_the_way_out(tmp_path: Path) -> None:
    result = run_module(tmp_path, {}, templates=["rtp.conf"])
    assert result["failed"] is True
    assert "templates: rendered on the controller by the role's action plugin" in result["msg"]
    assert "give files instead" in result["msg"]


def test_a_re_run_compares_with_what_the_package_task_found_and_runs_no_module(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    files = {"rtp.conf": "rtpstart=10000", "extensions.conf": extensions(25)}
    # As in the role: the package task's shell command looks at the files first.
    look = {"asterisk_packages": {"packages": [], "proxy_file": str(tmp_path / "01proxy"),
                                  "look_at_files": [str(etc / name) for name in files]},
            "register": "_asterisk_packages"}  # fmt: skip
    task = {"asterisk_config_files": {"directory": str(etc), **me(), "mode": "0640", "files": files,
                                      "found": "{{ _asterisk_packages.found }}"},
            "register": "written"}  # fmt: skip

    def run(changed: list[str], *tasks: dict) -> int:
        check = {"ansible.builtin.assert": {"that": f"written.changed_files | sort == {sorted(changed)}"}}
        done = role_tasks(tmp_path, [*(tasks or (look, task)), check])
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        return module_runs(tmp_path, "asterisk_config_files")

    assert run(["rtp.conf", "extensions.conf"]) == 1
    assert run([]) == 1  # stat and sha256sum said every file is in place: no module ran
    # Without what the package task found (--tags config), the module compares.
    assert run([], {**task, "asterisk_config_files": {**task["asterisk_config_files"], "found": {}}}) == 2
    (etc / "rtp.conf").chmod(0o600)
    assert run(["rtp.conf"]) == 3 and (etc / "rtp.conf").stat().st_mode & 0o777 == 0o640
    (etc / "extensions.conf").write_text(extensions(20))
    assert run(["extensions.conf"]) == 4 and (etc / "extensions.conf").read_text() == extensions(25)
    assert (etc / "rtp.conf").read_text() == "rtpstart=10000\n"


def test_services_start_after_their_files_are_written_and_a_failure_names_the_service(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    task = {"asterisk_config_files": {"directory": str(etc), **me(), "files": {"rtp.conf": "rtpstart=10000"},
                                      "start": ["asterisk-lab-no-such-service"]},
            "register": "written", "ignore_errors": True}  # fmt: skip
    check = {"ansible.builtin.assert": {"that": [
        "written.failed", "written.changed_files == ['rtp.conf']", "written.started == []",
        "'starting asterisk-lab-no-such-service failed' in written.msg"]}}  # fmt: skip
    done = role_tasks(tmp_path, [task, check])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (etc / "rtp.conf").read_text() == "rtpstart=10000\n"  # written before the start was tried
    assert module_runs(tmp_path, "service") == 1
    # Nothing to start: no service module runs, and nothing is reported started.
    task["asterisk_config_files"]["start"] = []
    check["ansible.builtin.assert"]["that"] = ["not written.failed", "not written.changed", "written.started == []"]
    done = role_tasks(tmp_path, [task, check])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert module_runs(tmp_path, "service") == 1


def test_a_check_run_after_a_pretended_install_reports_the_services_it_would_start(tmp_path: Path) -> None:
    # A --check of a PBX where nothing is installed yet: the package task only pretended to
    # install, so the services are not there to ask, and asking fails.
    etc = tmp_path / "etc"
    task = {"asterisk_config_files": {"directory": str(etc), **me(), "files": {"rtp.conf": "rtpstart=10000"},
                                      "start": ["asterisk-lab-no-such-service"],
                                      "packages_installed": ["asterisk"]},
            "register": "written"}  # fmt: skip
    check = {"ansible.builtin.assert": {"that": [
        "not written.failed", "written.changed", "written.changed_files == ['rtp.conf']",
        "written.started == ['asterisk-lab-no-such-service']"]}}  # fmt: skip
    done = role_tasks(tmp_path, [task, check], "--check")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not etc.exists() and module_runs(tmp_path, "service") == 0
    # With the packages in place, a check run asks the service, as a real run does.
    task["asterisk_config_files"]["packages_installed"] = []
    task["ignore_errors"] = True
    check["ansible.builtin.assert"]["that"] = ["written.failed", "'starting asterisk-lab-no-such-service' in written.msg"]
    done = role_tasks(tmp_path, [task, check], "--check")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert module_runs(tmp_path, "service") == 1


def test_a_file_is_in_place_only_when_content_owner_group_and_mode_all_match() -> None:
    action = _load("_asterisk_config_files_action", ACTION_PLUGINS / "asterisk_config_files.py")
    digest = __import__("hashlib").sha256(b"a=1\n").hexdigest()
    found = {"/etc/asterisk/x.conf": {"mode": "640", "owner": "root", "group": "asterisk", "sha256": digest},
             "/etc/asterisk/y.conf": None}
    wanted = {"/etc/asterisk/x.conf": "a=1\n"}
    assert action.files_in_place(found, wanted, "root", "asterisk", "0640")
    assert not action.files_in_place(found, wanted, "root", "asterisk", "0644")
    assert not action.files_in_place(found, wanted, "asterisk", "asterisk", "0640")
    assert not action.files_in_place(found, {"/etc/asterisk/x.conf": "a=2\n"}, "root", "asterisk", "0640")
    assert not action.files_in_place(found, {**wanted, "/etc/asterisk/y.conf": "b\n"}, "root", "asterisk", "0640")
    # A symbolic mode is left to the module to compare.
    assert not action.files_in_place(found, wanted, "root", "asterisk", "u=rw,g=r")
