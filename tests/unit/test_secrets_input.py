"""Secrets are data: chosen ones come from a file (Vault-encrypted or not), are never read as
templates, are printed into Asterisk's config so that Asterisk reads them back intact, and
never appear in what a refused run prints.

The refusals run the real entry point (site.yml) on throw-away inventories whose hosts are
never reached; the runs that must pass stop after playbooks/validate.yml (the first play
site.yml imports), so nothing is configured on this machine.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from entry_point import ROOT, pbx_inventory, site

_spec = importlib.util.spec_from_file_location("asterisk_conf", ROOT / "plugins" / "filter" / "asterisk_conf.py")
asterisk_conf = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(asterisk_conf)

# Every character that means something to Jinja, YAML or Asterisk's config parser.
NASTY = "a;b#c{{ d }}'e\"f\\g{% raw %}:h,i=j [k] ;--l"
USERS = ("amine", "chhiny", "makuba", "kaiba", "chhinyleboss")
TRUNKS = ("trunk_A_vers_B", "siptrunk")


def chosen_secrets(**users: str) -> dict:
    """Every secret of the reference lab's pod1, strong and distinct, with `users` replaced."""
    secrets = {"users": {name: f"{name}-Chosen-Secret-7Q2" for name in USERS},
               "trunks": {name: f"{name}-Chosen-Secret-7Q2" for name in TRUNKS},
               "pins": {name: "48213" for name in USERS}}
    secrets["users"].update(users)
    return {"pods": {"pod1": secrets}}


def run(tmp_path: Path, playbook: str, inventory_vars: dict, *extra: str) -> subprocess.CompletedProcess[str]:
    return site(tmp_path, pbx_inventory(tmp_path, inventory_vars), *extra, playbook=playbook)


def vault(tmp_path: Path, name: str, data: dict) -> tuple[Path, Path]:
    """`data` written as an instructor would: `ansible-vault encrypt` on a YAML file."""
    password = tmp_path / "vault-password"
    password.write_text("correct horse battery staple\n")
    secrets = tmp_path / name
    secrets.write_text(yaml.safe_dump(data))
    subprocess.run([str(Path(sys.executable).parent / "ansible-vault"), "encrypt", "--vault-password-file",
                    str(password), str(secrets)], check=True, capture_output=True)
    assert secrets.read_text().startswith("$ANSIBLE_VAULT")
    return secrets, password


def output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def test_a_secret_in_the_inventory_is_refused_without_templating_or_printing_it(tmp_path: Path) -> None:
    done = run(tmp_path, "site.yml", {"lab_secrets": {"users": {"amine": NASTY}}})
    assert done.returncode != 0
    assert "lab_secrets: secrets are not read from the inventory" in done.stdout, output(done)[-3000:]
    assert "lab_secrets_file" in done.stdout
    for fragment in ("{{ d }}", "a;b#c", "raw %}"):
        assert fragment not in output(done)
    assert not (tmp_path / "credentials.yml").exists()


def test_chosen_secrets_from_a_vault_file_pass_as_written_without_being_templated(tmp_path: Path) -> None:
    secrets, password = vault(tmp_path, "secrets.yml", chosen_secrets(amine=NASTY))
    done = run(tmp_path, "playbooks/validate.yml",
               {"lab_secrets_file": str(secrets), "lab_generate_secrets": False},
               "--vault-password-file", str(password))
    assert done.returncode == 0, output(done)[-3000:]
    assert NASTY not in output(done)
    # Nothing was generated, so nothing was written on the controller.
    assert not (tmp_path / "credentials.yml").exists()


def test_a_missing_chosen_secret_is_refused_by_name(tmp_path: Path) -> None:
    data = chosen_secrets(amine=NASTY)
    del data["pods"]["pod1"]["users"]["makuba"]
    secrets, password = vault(tmp_path, "secrets.yml", data)
    done = run(tmp_path, "site.yml", {"lab_secrets_file": str(secrets), "lab_generate_secrets": False},
               "--vault-password-file", str(password))
    assert done.returncode != 0
    assert ("users.makuba: no secret for lab_users[2] (makuba); add it to lab_secrets_file"
            in done.stdout), output(done)[-3000:]
    assert "no host was changed" in done.stdout
    for value in (NASTY, "{{ d }}", "Chosen-Secret-7Q2"):
        assert value not in output(done)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"pods": {"pod1": {"users": ["amine", "Leaky-Secret-9Z"]}}},
         "lab_secrets_file: pods.pod1.users: a list, not a mapping; write {name: secret}"),
        ({"pods": {"pod1": {"user": {"amine": "Leaky-Secret-9Z"}}}},
         "lab_secrets_file: pods.pod1.user: unknown kind; use users, trunks or pins"),
        ({"pods": {"pod1": {"users": {"amin": "Leaky-Secret-9Z"}}}},
         "lab_secrets_file: pods.pod1.users.amin: lab_users has no 'amin'; did you mean amine?"),
        ({"pods": ["Leaky-Secret-9Z"]}, "lab_secrets_file: pods: a list, not a mapping"),
        ("Leaky-Secret-9Z", "lab_secrets_file: the file holds a str, not a mapping"),
    ],
    ids=["kind-as-list", "kind-typo", "user-typo", "pods-as-list", "not-a-mapping"],
)
def test_a_malformed_secrets_file_is_refused_naming_where(tmp_path: Path, data: object, expected: str) -> None:
    secrets = tmp_path / "secrets.yml"
    secrets.write_text(yaml.safe_dump(data))
    done = run(tmp_path, "site.yml", {"lab_secrets_file": str(secrets)})
    assert done.returncode != 0
    assert expected in done.stdout.replace("\n        ", " "), output(done)[-3000:]
    assert "Leaky-Secret-9Z" not in output(done)
    assert not (tmp_path / "credentials.yml").exists()


def test_a_secrets_file_that_is_not_yaml_is_refused_without_quoting_it(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.yml"
    secrets.write_text("pods:\n  pod1:\n    users:\n      amine: \"Leaky-Secret-9Z\n    [\n")
    done = run(tmp_path, "site.yml", {"lab_secrets_file": str(secrets)})
    assert done.returncode != 0
    assert f"lab_secrets_file: {secrets} is not valid YAML at line" in done.stdout, output(done)[-3000:]
    assert "Leaky-Secret-9Z" not in output(done)


def test_a_missing_secrets_file_is_named(tmp_path: Path) -> None:
    done = run(tmp_path, "site.yml", {"lab_secrets_file": str(tmp_path / "nowhere.yml")})
    assert done.returncode != 0
    assert f"lab_secrets_file: {tmp_path / 'nowhere.yml'} does not exist" in done.stdout, output(done)[-3000:]


def test_new_secrets_are_never_written_in_clear_over_a_vault_file(tmp_path: Path) -> None:
    data = chosen_secrets()
    del data["pods"]["pod1"]["users"]["makuba"]  # the lab must generate and store this one
    sealed, password = vault(tmp_path, "credentials.yml", data)
    before = sealed.read_text()
    done = run(tmp_path, "site.yml", {}, "--vault-password-file", str(password))
    assert done.returncode != 0
    assert "is Vault-encrypted, and the lab would write new secrets for pod1" in done.stdout, output(done)[-3000:]
    assert sealed.read_text() == before


@pytest.mark.parametrize(
    ("secret", "written"),
    [("a;b", "a\\;b"), ("a\\;b", "a\\\\;b"), (";--x--;", "\\;--x--\\;"), (NASTY, NASTY.replace(";", "\\;"))],
)
def test_a_secret_is_written_so_that_asterisk_reads_it_back(secret: str, written: str) -> None:
    assert asterisk_conf.asterisk_conf_value(secret) == written
    # What main/config.c does to a value: a backslash right before `;` is dropped, and that
    # `;` is kept; the first other `;` starts a comment.
    read, rest = "", written
    while ";" in rest:
        head, rest = rest.split(";", 1)
        if not head.endswith("\\"):
            rest = ""
            read += head
            break
        read += head[:-1] + ";"
    else:
        read += rest
    assert read == secret


def test_a_value_with_a_line_break_is_never_written() -> None:
    with pytest.raises(ValueError, match="line break"):
        asterisk_conf.asterisk_conf_value("a\n[evil]")
