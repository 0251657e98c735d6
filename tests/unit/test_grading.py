"""The grading file of a hand-built lab (tests/lab/grading.py): what it accepts, and the error
each mistake gets before any call is placed, naming the file, the place and the fix, and
never a secret."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lab"))

from grading import GradingError, load  # noqa: E402

ASSIGNMENT = [{"name": "amine", "extension": "2001", "host": "vm-a"},
              {"name": "chhiny", "extension": "1001", "host": "vm-b"}]
QUESTIONS = {"1.1-register": "A phone registers", "2.2-busy": "Voicemail on busy"}
SECRET = "s3cr3t-Do-not-print"


def machines(prefix: str = "10.0.1") -> dict[str, dict[str, str]]:
    return {part: {"address": f"{prefix}.{octet}", "container": f"g-{part}"}
            for part, octet in (("vm-a", 153), ("vm-b", 154), ("tester", 110), ("provider", 200))}


def good() -> dict:
    return {"pods": {"group1": {**machines(), "users": {
        "amine": {"secret": SECRET, "pin": "1234"}, "chhiny": {"secret": "other-secret", "extension": 1010}}}}}


def graded(tmp_path: Path, content: dict | str) -> dict:
    path = tmp_path / "grading.yml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return load(path, ASSIGNMENT, QUESTIONS)


def refusal(tmp_path: Path, content: dict | str) -> str:
    with pytest.raises(GradingError) as raised:
        graded(tmp_path, content)
    message = str(raised.value)
    assert SECRET not in message
    assert "grading.yml" in message
    return message


def test_a_good_file_gives_each_pods_machines_and_the_assignments_users_with_their_accounts(tmp_path: Path) -> None:
    found = graded(tmp_path, good())
    assert found["questions"] == list(QUESTIONS)
    pod = found["pods"]["group1"]
    assert pod["vm-a"] == {"address": "10.0.1.153", "container": "g-vm-a"}
    assert pod["users"] == [
        {"name": "amine", "extension": "2001", "host": "vm-a", "secret": SECRET, "pin": "1234"},
        {"name": "chhiny", "extension": "1010", "host": "vm-b", "secret": "other-secret", "pin": ""},
    ]


def test_questions_may_be_a_list_of_the_reports(tmp_path: Path) -> None:
    assert graded(tmp_path, {**good(), "questions": ["2.2-busy"]})["questions"] == ["2.2-busy"]


def test_an_unknown_question_is_named_with_the_list_of_questions(tmp_path: Path) -> None:
    message = refusal(tmp_path, {**good(), "questions": ["1.1-register", "2.7-fax"]})
    assert "2.7-fax is not a question of the report" in message and "1.1-register, 2.2-busy" in message


@pytest.mark.parametrize("part", ["vm-a", "vm-b", "tester", "provider"])
def test_a_missing_address_names_the_pod_and_the_machine(tmp_path: Path, part: str) -> None:
    content = good()
    del content["pods"]["group1"][part]["address"]
    assert f"pods.group1.{part}.address is missing" in refusal(tmp_path, content)


def test_a_missing_machine_says_what_to_write(tmp_path: Path) -> None:
    content = good()
    del content["pods"]["group1"]["vm-b"]
    assert "pods.group1.vm-b is missing: give its address and container" in refusal(tmp_path, content)


@pytest.mark.parametrize("account", [{}, {"secret": ""}, {"pin": "1234"}, None])
def test_a_user_without_a_secret_is_named(tmp_path: Path, account) -> None:
    content = good()
    content["pods"]["group1"]["users"]["chhiny"] = account
    assert "pods.group1.users.chhiny has no secret" in refusal(tmp_path, content)


def test_a_user_the_assignment_does_not_have_is_named_with_the_assignments_users(tmp_path: Path) -> None:
    content = good()
    content["pods"]["group1"]["users"]["mallory"] = {"secret": "x"}
    assert "mallory is not a user of the assignment; its users are amine, chhiny" in refusal(tmp_path, content)


def test_two_pods_sharing_a_pbx_address_are_refused(tmp_path: Path) -> None:
    content = good()
    content["pods"]["group2"] = {**machines("10.0.2"), "users": content["pods"]["group1"]["users"]}
    content["pods"]["group2"]["vm-b"] = {"address": "10.0.1.154", "container": "x"}
    message = refusal(tmp_path, content)
    assert "pods.group2.vm-b.address: 10.0.1.154 is already pods.group1.vm-b.address" in message


@pytest.mark.parametrize("content", ["pods: []", "[1, 2]", "questions: all", ": not: yaml: ["])
def test_a_file_without_pods_or_not_yaml_is_refused(tmp_path: Path, content: str) -> None:
    refusal(tmp_path, content)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(GradingError, match="cannot be read"):
        load(tmp_path / "nowhere.yml", ASSIGNMENT, QUESTIONS)
