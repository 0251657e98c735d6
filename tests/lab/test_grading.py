"""Grading a lab we did not build (--lab-grading, grading.py), against a lab broken the way
students break theirs.

The local lab is broken by hand, as a student would leave it: vm-b registers to vm-a with a
wrong trunk secret, and one user (kaiba) has no mailbox. A grading file then gives its
machines and accounts, nothing else of the project, and the report's questions are asked of
it in a pytest run of their own: exactly the trunk's questions and kaiba's voicemail fail,
each with a reason a student understands, and the others pass. A converge (site.yml) mends
the lab afterwards.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import REPO, Lab, _inventory, cli, lab_of, pods, wait_for
from test_two_pbx_lab import contact_of

pytestmark = pytest.mark.local_lab

# The questions asked: those the breakage fails, and some it must not (kept few: the run is
# part of make test).
ASKED = ["1.1-register", "1.1-trunk-a-to-b", "1.1-trunk-b-to-a", "2.2-busy", "2.2-voicemailmain", "2.3-attendant"]
# Each failed question, and words its reason must hold for a student to see what is wrong.
BROKEN = {"1.1-trunk-a-to-b": ("across the trunk", "did not go through"),
          "1.1-trunk-b-to-a": ("across the trunk", "did not go through"),
          "2.2-busy": ("kaiba", "voicemail")}  # fmt: skip
WITHOUT_MAILBOX = "kaiba"


def grading_file(lab: Lab) -> dict:
    """What an instructor writes for a group: machines and accounts, nothing of how it was built."""
    machines = {part: {"address": lab.addresses[part], "container": lab.containers[part]}
                for part in ("vm-a", "vm-b", "tester", "provider")}  # fmt: skip
    users = {user["name"]: {"secret": lab.secret(user["name"]),
                            **({"pin": lab.secrets["pins"][user["name"]]} if user["name"] in lab.secrets["pins"] else {})}
             for user in lab.users}  # fmt: skip
    return {"questions": ASKED, "pods": {"group1": {**machines, "users": users}}}


def between_pbxs(lab: Lab) -> dict:
    return next(t for t in lab.trunks if isinstance(t["registrar"], str))


def break_the_lab(pbx, lab: Lab) -> None:
    """vm-b's trunk secret made wrong, and kaiba's mailbox taken out of vm-a's voicemail.conf.

    vm-b first unregisters (vm-a forgets its contact, as when it expires), then registers
    with the wrong secret and is refused; it then stops retrying, so that vm-a's fail2ban,
    which bans after 5 failures, does not ban vm-b for the tests after this one."""
    trunk = between_pbxs(lab)
    registrant, registrar = pbx[trunk["registrant"]], pbx[trunk["registrar"]]
    cli(registrant, f"pjsip send unregister {trunk['name']}")
    assert wait_for(lambda: contact_of(registrar, trunk["name"]) is None, 20)
    registrant.check_output(f"sed -i '/^\\[{trunk['name']}\\]$/,/^$/ s/^password=.*/password=not-the-trunk-secret/'"
                            " /etc/asterisk/pjsip.conf")
    cli(registrant, "module reload res_pjsip.so")
    cli(registrant, f"pjsip send register {trunk['name']}")
    assert wait_for(lambda: "Rejected" in cli(registrant, "pjsip show registrations"), 20)
    cli(registrant, f"pjsip send unregister {trunk['name']}")
    assert contact_of(registrar, trunk["name"]) is None
    mailbox = lab.user(WITHOUT_MAILBOX)["extension"]
    services = pbx[lab.features["services_host"]]
    services.check_output(f"sed -i '/^{mailbox} =>/d' /etc/asterisk/voicemail.conf")
    cli(services, "voicemail reload")
    assert f" {mailbox} " not in cli(services, "voicemail show users")


def grade(content: dict, folder: Path, report: bool = True) -> tuple[subprocess.CompletedProcess[str], list[dict]]:
    """A grading run of its own (make grade, as an instructor runs it) over the grading file
    `content`: what pytest printed, and the class summary's rows (none without a report)."""
    grading = folder / "grading.yml"
    grading.write_text(yaml.safe_dump(content))
    options = ["--lab-report", str(folder / "report")] if report else []
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST_")}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lab-grading",
                           str(grading), *options, "tests/lab"], cwd=REPO, env=env, capture_output=True, text=True)
    summary = folder / "report" / "summary.csv"
    return done, list(csv.DictReader(summary.read_text().splitlines())) if summary.exists() else []


@pytest.fixture
def broken_lab(pbx, lab: Lab, converge):
    break_the_lab(pbx, lab)
    yield lab
    # Mended: site.yml writes the files back; vm-a forgives vm-b's refusals (fail2ban);
    # vm-b's registration, stopped, starts again as after a reboot.
    mended = converge()
    assert mended.returncode == 0, mended.stdout[-3000:]
    trunk = between_pbxs(lab)
    pbx[trunk["registrar"]].run(f"fail2ban-client unban {lab.addresses[trunk['registrant']]}")
    cli(pbx[trunk["registrant"]], f"pjsip send register {trunk['name']}")
    assert wait_for(lambda: contact_of(pbx[trunk["registrar"]], trunk["name"]) is not None, 30)


def test_grading_a_broken_lab_fails_exactly_its_trunk_and_the_missing_voicemail(broken_lab: Lab, tmp_path: Path) -> None:
    assert _inventory() == str(REPO / "inventory" / "local") and len(pods()) >= 1
    done, summary = grade(grading_file(broken_lab), tmp_path)
    rows = {row["question"]: row for row in summary}
    assert sorted(rows) == sorted(ASKED), done.stdout[-3000:]
    failed = {number: row["reason"] for number, row in rows.items() if row["verdict"] != "pass"}
    assert sorted(failed) == sorted(BROKEN), (failed, done.stdout[-3000:])
    for number, words in BROKEN.items():
        assert all(word in failed[number] for word in words), (number, failed[number])
    assert all(row["pod"] == "group1" for row in rows.values())
    assert done.returncode != 0  # pytest itself says the graded lab failed checks


def test_grading_a_lab_that_does_not_answer_says_so_for_every_question(tmp_path: Path) -> None:
    lab = lab_of(pods()[0])
    content = grading_file(lab)
    # An address on the lab's network where no machine is: nothing answers SIP there.
    silent = lab.addresses["vm-a"].rsplit(".", 1)[0] + ".99"
    content["pods"]["group1"]["vm-a"]["address"] = silent
    content["questions"] = ["1.1-register", "1.2"]
    done, rows = grade(content, tmp_path)
    assert {row["question"] for row in rows} == {"1.1-register", "1.2"}, done.stdout[-3000:]
    for row in rows:
        assert row["verdict"] == "fail" and row["reason"].startswith(f"no answer from {silent} (vm-a)"), row
    assert "Traceback" not in done.stdout


def test_a_bad_grading_file_is_refused_before_any_call(tmp_path: Path) -> None:
    content = grading_file(lab_of(pods()[0]))
    del content["pods"]["group1"]["users"]["kaiba"]["secret"]
    done, rows = grade(content, tmp_path, report=False)
    assert done.returncode != 0 and rows == []
    assert "pods.group1.users.kaiba has no secret" in done.stdout + done.stderr
    assert "passed" not in done.stdout and "failed" not in done.stdout
