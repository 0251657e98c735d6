"""A class of pods: each pod is its own lab, and nothing of one pod reaches another.

Each pod has its own secrets, its own trunk between its own A and B, its own account at the
provider, and its own phone card; calls in every pod at once all complete.
"""

from __future__ import annotations

import html
import re
import shlex
from html.parser import HTMLParser
from pathlib import Path

import pytest

from conftest import Lab, _host, _phones, cli, lab_of, pods, wait_for
from sipp import echoed_fraction

PROVIDER_TRUNK = "siptrunk"

pytestmark = pytest.mark.skipif(len(pods()) < 2, reason="the inventory under test has one pod")


def other_pods(pod: str) -> list[str]:
    return [other for other in pods() if other != pod]


def test_each_pod_has_its_own_secrets() -> None:
    for pod in pods():
        for other in other_pods(pod):
            for kind in ("users", "trunks", "pins"):
                mine, theirs = lab_of(pod).secrets[kind], lab_of(other).secrets[kind]
                assert mine.keys() == theirs.keys()
                assert not set(mine.values()) & set(theirs.values()), f"{pod} and {other} share {kind}"


@pytest.mark.parametrize("user", ["amine", "chhinyleboss"])
def test_a_users_secret_of_one_pod_is_refused_by_every_other_pod(user: str) -> None:
    for pod in pods():
        for other in other_pods(pod):
            here, there = lab_of(pod), lab_of(other)
            phones = _phones(there.containers[there.testers[0]])
            # The same user name, with the secret of another pod: refused, as a wrong password is.
            assert phones.register(user, here.secret(user), there.registrar_of(user)) == 401
            # With the pod's own secret, the same phone is welcome.
            assert phones.register(user, there.secret(user), there.registrar_of(user)) == 200


def test_each_pods_b_registers_only_to_its_own_a() -> None:
    for pod in pods():
        lab = lab_of(pod)
        trunk = next(t for t in lab.trunks if isinstance(t["registrar"], str))
        registrar, registrant = lab.containers[trunk["registrar"]], lab.containers[trunk["registrant"]]
        status = cli(_host(registrant), "pjsip show registrations")
        assert re.search(rf"{trunk['name']}/sip:{re.escape(lab.addresses[trunk['registrar']])}:\S+\s+"
                         rf"{trunk['name']}\s+Registered", status), status
        contacts = cli(_host(registrar), f"pjsip show aor {trunk['name']}")
        assert lab.addresses[trunk["registrant"]] in contacts, contacts
        for other in other_pods(pod):
            for address in lab_of(other).addresses.values():
                assert address not in contacts, f"{pod}'s A holds a contact of {other}: {contacts}"


def test_no_config_of_a_pod_names_another_pods_address() -> None:
    for pod in pods():
        lab = lab_of(pod)
        foreign = sorted({address for other in other_pods(pod) for address in lab_of(other).addresses.values()})
        pattern = "|".join(re.escape(address) + r"\b" for address in foreign)
        for part in ("vm-a", "vm-b"):
            host = _host(lab.containers[part])
            # Its pod's PBXs' addresses are there (the search works); no other pod's is.
            ours = "|".join(re.escape(lab.addresses[pbx]) + r"\b" for pbx in ("vm-a", "vm-b"))
            assert host.run(f"grep -rqE {shlex.quote(ours)} /etc/asterisk").rc == 0
            named = host.run(f"grep -rIlE {shlex.quote(pattern)} /etc/asterisk /etc/fail2ban")
            assert named.rc == 1, f"{pod}'s {part}: {named.stdout} name another pod's address"


def test_each_pod_registers_to_the_provider_with_its_own_account() -> None:
    providers = {}
    try:
        for pod in pods():
            lab = lab_of(pod)
            trunk = next(t for t in lab.trunks if t["name"] == PROVIDER_TRUNK)
            itsp = _phones(lab.containers["provider"])
            providers[pod] = (itsp, itsp.provider_in_background(
                str(trunk["username"]), lab.secrets["trunks"][PROVIDER_TRUNK], int(trunk["registrar"]["port"]),
                lab.addresses["vm-a"]))
            cli(_host(lab.containers["vm-a"]), f"pjsip send register {PROVIDER_TRUNK}")
        accounts = set()
        for pod, (itsp, handle) in providers.items():
            lab = lab_of(pod)
            username = str(next(t for t in lab.trunks if t["name"] == PROVIDER_TRUNK)["username"])
            accounts.add(username)
            log_file = f"{handle.run.dir}/scenario.log"
            assert wait_for(lambda: f"REGISTER auth=ok user={username} " in itsp._host.run(f"cat {log_file}").stdout,
                            30), itsp._host.run(f"cat {log_file}").stdout
        assert len(accounts) == len(pods()), f"pods share a provider account: {accounts}"
    finally:
        for _itsp, handle in providers.values():
            handle.stop()


def test_calls_in_every_pod_at_the_same_time_complete() -> None:
    """amine calls chhinyleboss across the trunk in every pod at once; each call carries audio."""
    started = []
    for pod in pods():
        lab = lab_of(pod)
        phones = _phones(lab.containers[lab.testers[0]])
        answering = phones.answer_in_background(
            "chhinyleboss", secret=lab.secret("chhinyleboss"), registrar=lab.registrar_of("chhinyleboss"),
            capture=True)
        calling = phones.call_in_background(
            "amine", lab.secret("amine"), lab.registrar_of("amine"), lab.user("chhinyleboss")["extension"],
            seconds=8)
        started.append((pod, calling, answering))
    for pod, calling, answering in started:
        call, answered = calling.wait(), answering.wait()
        assert call.completed, f"{pod}: {call.log}"
        assert answered.answered and answered.bye_received, f"{pod}: {answered.log}"
        assert echoed_fraction(call.sent, answered.received, after=1.0) > 0.8, pod


def test_a_chosen_secret_holding_every_special_character_is_in_force_as_written() -> None:
    """Secrets chosen in a Vault file (the README's route; Molecule's pod 2, written by
    molecule/default/prepare.yml) are the ones the PBXs use, even one that holds Jinja, YAML
    and Asterisk config syntax: its phone registers and calls across the trunk with audio."""
    if not any(lab_of(pod).settings.get("lab_secrets_file") for pod in pods()):
        pytest.skip("the inventory under test chooses no secrets (lab_secrets_file)")
    chosen = [(pod, user, secret) for pod in pods() for user, secret in lab_of(pod).secrets["users"].items()
              if all(c in secret for c in ";#{}'\"\\")]
    assert chosen, "no pod of the lab under test has a chosen secret holding ; # { } ' \" \\"
    for pod, user, secret in chosen:
        lab = lab_of(pod)
        callee = next(u["name"] for u in lab.users if u["host"] != lab.user(user)["host"])
        phones = _phones(lab.containers[lab.testers[0]])
        assert phones.register(user, secret, lab.registrar_of(user)) == 200, pod
        answering = phones.answer_in_background(
            callee, secret=lab.secret(callee), registrar=lab.registrar_of(callee), capture=True)
        call = phones.call(user, secret, lab.registrar_of(user), lab.user(callee)["extension"], seconds=5)
        answered = answering.wait()
        assert call.completed, f"{pod}: {call.log}"
        assert echoed_fraction(call.sent, answered.received, after=1.0) > 0.8, pod


class _Text(HTMLParser):
    """The text a reader sees on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _card_text(lab: Lab) -> str:
    card = Path(re.sub(r"\.yml$", "", lab.credentials_file) + f"-{lab.pod}.html")
    assert card.stat().st_mode & 0o077 == 0, oct(card.stat().st_mode)
    reader = _Text()
    reader.feed(card.read_text())
    return html.unescape(" ".join(reader.parts))


def test_each_pods_phone_card_holds_its_secrets_and_only_those() -> None:
    for pod in pods():
        lab, text = lab_of(pod), _card_text(lab_of(pod))
        assert pod in text
        for user in lab.users:
            assert lab.secret(user["name"]) in text
            assert lab.secrets["pins"][user["name"]] in text
            assert lab.registrar_of(user["name"]) in text
        assert not any(secret in text for secret in lab.secrets["trunks"].values())
        for other in other_pods(pod):
            theirs = lab_of(other).secrets
            assert not any(secret in text for secret in theirs["users"].values()), f"{pod}'s card has {other}'s"
            assert not any(re.search(rf"\b{pin}\b", text) for pin in theirs["pins"].values())
