"""Safety of the lab: bad input changes nothing, strangers are kept out, secrets stay secret,
restarts recover on their own and a re-run of site.yml keeps calls up.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ipaddress
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, Lab
from sipp import SippRunner, echoed_fraction

ATTACKER_HOST_OCTET = 66  # a second address of the tester plays a stranger on the network
# More addresses of the tester, each for one test so that no test inherits another's failures
# (fail2ban counts an address's failures for lab_ban_window_seconds): a student's phone
# outside lab_never_banned_networks that mistypes, and a scanner trying user names.
MISTYPING_HOST_OCTET = 67
SCANNER_HOST_OCTET = 68
SCANNER_SIP_PORT = 20990  # below the ports SippRunner gives its phones
# fail2ban's jails (roles/asterisk/templates/etc/fail2ban/jail.d/asterisk-lab.local.j2): one
# failure per wrong answer to a challenge; one per request under a name the PBX does not know.
JAILS = ("asterisk", "asterisk-unknown-users")


def cli(host, command: str) -> str:
    return host.check_output(f"asterisk -rx {command!r}")


def config_checksums(host) -> str:
    return host.check_output("sha256sum /etc/asterisk/*.conf /etc/fail2ban/jail.d/asterisk-lab.local"
                             " /etc/fail2ban/filter.d/asterisk-lab.conf")


def wait_for(condition, timeout: float, step: float = 1.0) -> float | None:
    """Seconds until condition() was true, or None after timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if condition():
            return time.monotonic() - start
        time.sleep(step)
    return None


def restart_asterisk(host) -> None:
    """Stop Asterisk, wait until it has exited, start it and wait until it has booted."""
    host.check_output("service asterisk stop")
    assert wait_for(lambda: host.run("pgrep -x asterisk").rc == 1, 30, 0.5) is not None
    host.check_output("service asterisk start")
    assert wait_for(lambda: host.run("asterisk -rx 'core waitfullybooted'").rc == 0, 30, 0.5) is not None


def users_on(lab: Lab, pbx_name: str) -> list[str]:
    return [u["name"] for u in lab.users if u["host"] == pbx_name]


def call_across(lab: Lab, phones: SippRunner, caller: str, callee: str):
    """caller calls callee (on the other PBX); returns (call, what the callee's phone saw)."""
    callee_pbx = lab.addresses[lab.user(callee)["host"]]
    answering = phones.answer_in_background(callee, secret=lab.secret(callee), registrar=callee_pbx)
    call = phones.call(caller, lab.secret(caller), lab.registrar_of(caller), lab.user(callee)["extension"], seconds=4)
    return call, answering.wait()


# ---------------------------------------------------------------- bad input changes nothing

def test_a_bad_lab_description_is_refused_before_any_host_changes(lab: Lab, pbx, converge) -> None:
    before = {name: config_checksums(host) for name, host in pbx.items()}
    bad_users = [dict(u) for u in lab.users] + [
        {"name": "intruder", "extension": lab.users[0]["extension"], "host": "vm-z"},
    ]
    run = converge({"lab_users": bad_users})
    assert run.returncode != 0
    assert f'lab_users[{len(bad_users) - 1}].extension: "{lab.users[0]["extension"]}" is already' in run.stdout
    assert f'lab_users[{len(bad_users) - 1}].host: "vm-z" is not a pbx host' in run.stdout
    assert "no host was changed" in run.stdout
    assert {name: config_checksums(host) for name, host in pbx.items()} == before


# ---------------------------------------------------------------- secrets

def test_no_secret_of_the_lab_is_in_the_repository(lab: Lab) -> None:
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
    contents = b"".join((REPO / name).read_bytes() for name in tracked.decode().split("\0")
                        if name and (REPO / name).is_file())
    secrets = [value for kind in lab.secrets.values() for value in kind.values()]
    assert secrets, "the lab has no secrets to look for"
    leaked = [value[:3] + "..." for value in secrets if value.encode() in contents]
    assert not leaked


def test_the_credentials_file_is_private_and_ignored_by_git() -> None:
    ignored = subprocess.run(["git", "check-ignore", "-q", "credentials/local.yml"], cwd=REPO)
    assert ignored.returncode == 0
    for path in (REPO / "credentials").glob("*.yml"):
        assert path.stat().st_mode & 0o077 == 0, path


@pytest.mark.parametrize("pbx_name", ["vm-a", "vm-b"])
def test_every_config_file_is_readable_by_root_and_asterisk_only(pbx, pbx_name: str) -> None:
    listing = pbx[pbx_name].check_output(
        "stat -c '%n %U %G %a' $(grep -l '^; Managed by asterisk-lab' /etc/asterisk/*.conf)")
    managed = [line.split() for line in listing.splitlines()]
    assert any(name.endswith("/pjsip.conf") for name, *_ in managed)
    for name, user, group, mode in managed:
        assert (user, group) == ("root", "asterisk"), name
        assert int(mode, 8) & 0o027 == 0, f"{name} is {mode}"


# ---------------------------------------------------------------- strangers

@contextlib.contextmanager
def extra_address(tester, lab: Lab, address: str):
    """Let the tester also send from `address`, on its interface towards vm-a."""
    device = tester.check_output("ip -o route get %s | sed -n 's/.* dev \\([^ ]*\\).*/\\1/p'",
                                 lab.addresses["vm-a"])
    tester.run(f"ip addr add {address}/32 dev {device}")
    try:
        yield address
    finally:
        tester.run(f"ip addr del {address}/32 dev {device}")


def address_on_testers_network(lab: Lab, host_octet: int) -> str:
    """An address of the tester's network ending in `host_octet`."""
    return lab.addresses[lab.testers[0]].rsplit(".", 1)[0] + f".{host_octet}"


def in_networks(address: str, networks: list[str]) -> bool:
    return any(ipaddress.ip_address(address) in ipaddress.ip_network(n, strict=False) for n in networks)


@pytest.fixture
def attacker_address(lab: Lab, tester) -> str:
    """A second address of the tester, in the lab's network, from which a stranger sends."""
    with extra_address(tester, lab, address_on_testers_network(lab, ATTACKER_HOST_OCTET)) as a:
        yield a


def jail(host, name: str) -> dict[str, str]:
    """`fail2ban-client status NAME` as {field: value}: "Total failed", "Banned IP list"..."""
    fields = {}
    for line in host.check_output(f"fail2ban-client status {name}").splitlines():
        key, colon, value = line.partition(":")
        if colon:
            fields[key.strip(" |`-")] = value.strip()
    return fields


def failures(host, name: str = "asterisk") -> int:
    """How many failures jail `name` has counted since fail2ban started."""
    return int(jail(host, name)["Total failed"])


def banned(host, *names: str) -> set[str]:
    """The addresses banned by any of the jails `names`."""
    return {address for name in names for address in jail(host, name)["Banned IP list"].split()}


def failures_once_read(host, at_least: int = 0, name: str = "asterisk") -> int:
    """Jail `name`'s failures once fail2ban has read the log up to `at_least` of them, and a
    little longer (it reads every second), so that any further failure shows too."""
    wait_for(lambda: failures(host, name) >= at_least, timeout=15, step=0.5)
    time.sleep(3)
    return failures(host, name)


def unban(host, address: str) -> None:
    """Lift `address`'s bans now (as `make test` may run again within lab_ban_seconds)."""
    for name in JAILS:
        host.run(f"fail2ban-client set {name} unbanip {address}")


def test_a_password_guesser_is_banned_while_real_users_go_on_calling(
    lab: Lab, pbx, phones: SippRunner, attacker_address: str, report_figure
) -> None:
    vm_a = pbx["vm-a"]
    registrar = lab.addresses["vm-a"]
    victim, caller, callee = users_on(lab, "vm-a")[:3]
    with concurrent.futures.ThreadPoolExecutor() as pool:
        burst = pool.submit(phones.register_many, victim, "guess-" + lab.secret(victim), registrar,
                            count=200, source_ip=attacker_address)
        time.sleep(1)
        # Meanwhile a real user registers and calls from the tester's own address.
        assert phones.register(caller, lab.secret(caller), registrar) == 200
        answering = phones.answer_in_background(callee, secret=lab.secret(callee), registrar=registrar)
        call = phones.call(caller, lab.secret(caller), registrar, lab.user(callee)["extension"], seconds=4)
        attempts = burst.result()
    assert call.completed, call.log
    assert answering.wait().answered
    assert 200 not in attempts
    refused = attempts.count(None)
    assert refused > 100, f"only {refused} of 200 guesses went unanswered: {attempts}"
    jail = vm_a.check_output("fail2ban-client status asterisk")
    assert attacker_address in jail
    # Even the right password is refused from a banned address ...
    assert phones.register_many(victim, lab.secret(victim), registrar, count=1, source_ip=attacker_address) == [None]
    # ... until the ban lifts.
    lifted = wait_for(
        lambda: phones.register_many(victim, lab.secret(victim), registrar, count=1,
                                     source_ip=attacker_address) == [200],
        timeout=180, step=3)
    assert lifted is not None, "the ban never lifted"
    report_figure("ban of the password guesser lifted after", lifted)
    phones.unregister(victim, lab.secret(victim), registrar)


def test_a_mistyped_user_name_costs_one_attempt_as_a_wrong_password_does(
    lab: Lab, pbx, phones: SippRunner, tester
) -> None:
    vm_a, registrar = pbx["vm-a"], lab.addresses["vm-a"]
    limit = int(lab.settings["lab_ban_after_failures"])
    if limit < 3:
        pytest.skip(f"lab_ban_after_failures is {limit}: too few attempts to count")
    user = users_on(lab, "vm-a")[0]
    typo = user + user[-1]  # "aminee": a letter typed twice
    assert typo not in [u["name"] for u in lab.users]
    student = address_on_testers_network(lab, MISTYPING_HOST_OCTET)
    assert not in_networks(student, lab.settings["lab_never_banned_networks"])
    with extra_address(tester, lab, student):
        try:
            before = failures_once_read(vm_a)
            # REGISTER, 401, the answer under the mistyped name, 401: one failure (three before).
            assert phones.register(typo, lab.secret(user), registrar, source_ip=student) == 401
            assert failures_once_read(vm_a, before + 1) == before + 1
            # A wrong password: one failure too.
            assert phones.register(user, "wrong-" + lab.secret(user), registrar, source_ip=student) == 401
            assert failures_once_read(vm_a, before + 2) == before + 2
            # So a student who mistypes has lab_ban_after_failures attempts, whatever the mistake:
            # none of the jails bans before ...
            for _ in range(limit - 3):
                assert phones.register(typo, lab.secret(user), registrar, source_ip=student) == 401
            assert failures_once_read(vm_a, before + limit - 1) == before + limit - 1
            assert student not in banned(vm_a, *JAILS)
            # ... and the last one bans.
            assert phones.register(typo, lab.secret(user), registrar, source_ip=student) == 401
            assert wait_for(lambda: student in banned(vm_a, "asterisk"), timeout=15, step=0.5) is not None
        finally:
            unban(vm_a, student)


def test_phones_of_the_never_banned_networks_keep_registering_while_a_stranger_is_banned(
    lab: Lab, pbx, phones: SippRunner, attacker_address: str
) -> None:
    vm_a, registrar = pbx["vm-a"], lab.addresses["vm-a"]
    never_banned = lab.settings["lab_never_banned_networks"]
    classroom = lab.addresses[lab.testers[0]]  # the tester's own address: the students' phones
    if not in_networks(classroom, never_banned):
        pytest.skip("lab_never_banned_networks does not hold the tester's address: every phone can be banned")
    assert not in_networks(attacker_address, never_banned)
    user = users_on(lab, "vm-a")[1]
    typo = user + user[-1]
    # More mistakes of both kinds than any jail allows, from the classroom: none counts.
    mistakes = 2 * int(lab.settings["lab_ban_after_failures"]) + 1
    before = failures_once_read(vm_a)
    assert set(phones.register_many(typo, lab.secret(user), registrar, count=mistakes, rate=10)) == {401}
    assert set(phones.register_many(user, "wrong-" + lab.secret(user), registrar, count=mistakes, rate=10)) == {401}
    assert failures_once_read(vm_a, before) == before
    try:
        # The same mistakes from a stranger's address on the same network: banned.
        stranger = phones.register_many(user, "wrong-" + lab.secret(user), registrar, count=mistakes, rate=10,
                                        source_ip=attacker_address)
        assert 401 in stranger
        assert wait_for(lambda: attacker_address in banned(vm_a, "asterisk"), timeout=30, step=0.5) is not None
        assert classroom not in banned(vm_a, *JAILS)
        assert phones.register(user, lab.secret(user), registrar) == 200
        phones.unregister(user, lab.secret(user), registrar)
    finally:
        unban(vm_a, attacker_address)


def test_a_scanner_trying_user_names_is_banned(lab: Lab, pbx, phones: SippRunner, tester) -> None:
    vm_a, registrar = pbx["vm-a"], lab.addresses["vm-a"]
    scanner = address_on_testers_network(lab, SCANNER_HOST_OCTET)
    assert not in_networks(scanner, lab.settings["lab_never_banned_networks"])
    # That jail allows twice lab_ban_after_failures requests under unknown names (a phone that
    # mistypes sends two per attempt); a scanner sends one per name.
    names = 2 * int(lab.settings["lab_ban_after_failures"]) + 5
    before = failures_once_read(vm_a)
    with extra_address(tester, lab, scanner):
        try:
            # One REGISTER per name (scan1, scan2...), each challenge left unanswered (tests/sipp/scan.xml).
            tester.run(f"cd /tmp && timeout 60 sipp {registrar}:{lab.sip_port} -sf {phones.scenarios}/scan.xml"
                       f" -s scan -m {names} -r 10 -l 10 -i {scanner} -mi {scanner} -p {SCANNER_SIP_PORT}"
                       " -recv_timeout 2000 -max_retrans 1 -nostdin > /dev/null 2>&1")
            assert wait_for(lambda: scanner in banned(vm_a, "asterisk-unknown-users"), timeout=30, step=0.5) \
                is not None, jail(vm_a, "asterisk-unknown-users")
            # It never answered a challenge, so it never failed one.
            assert scanner not in banned(vm_a, "asterisk")
            assert failures(vm_a) == before
        finally:
            unban(vm_a, scanner)


def test_sip_from_outside_the_lab_networks_is_refused(lab: Lab, pbx, phones: SippRunner, tester) -> None:
    allowed = lab.settings["lab_sip_allowed_networks"]
    if not allowed:
        pytest.skip("this lab answers SIP from every network (lab_sip_allowed_networks is empty)")
    outsider = "198.18.0.66"  # a benchmarking range: in none of the lab's networks
    assert not any(ipaddress.ip_address(outsider) in ipaddress.ip_network(n, strict=False) for n in allowed)
    user = users_on(lab, "vm-a")[0]
    with extra_address(tester, lab, outsider):
        assert phones.register_many(user, lab.secret(user), lab.addresses["vm-a"], count=1,
                                    source_ip=outsider) == [None]
    # Asterisk received it and refused it by its ACL (not a lost packet).
    log = pbx["vm-a"].check_output(f"grep -F 'from {outsider}:' /var/log/asterisk/messages.log || true")
    assert "did not pass ACL test" in log, log


def test_an_unknown_user_and_a_wrong_password_leave_the_same_trace(pbx, lab: Lab, phones: SippRunner) -> None:
    vm_a = pbx["vm-a"]
    registrar = lab.addresses["vm-a"]
    assert "type=endpoint" not in vm_a.check_output("grep -A2 -i '^\\[anonymous\\]' /etc/asterisk/pjsip.conf || true")
    user = users_on(lab, "vm-a")[-1]
    assert phones.register(user, "wrong-" + lab.secret(user), registrar) == \
        phones.register("nobody-here", lab.secret(user), registrar)


# ---------------------------------------------------------------- recovery

def test_the_trunk_comes_back_within_30_s_after_vm_b_restarts(lab: Lab, pbx, phones: SippRunner, report_figure) -> None:
    trunk = lab.trunks[0]
    registrant = pbx[trunk["registrant"]]
    restart_asterisk(registrant)
    registered = wait_for(
        lambda: re.search(rf"{trunk['name']}/\S+\s+\S+\s+Registered", cli(registrant, "pjsip show registrations")),
        timeout=30, step=0.5)
    assert registered is not None, cli(registrant, "pjsip show registrations")
    report_figure(f"{trunk['registrant']} restarted: trunk registered again after", registered)
    caller, callee = users_on(lab, trunk["registrar"])[0], users_on(lab, trunk["registrant"])[0]
    call, answered = call_across(lab, phones, caller, callee)
    assert call.completed and answered.answered, call.log


def test_vm_b_registers_again_within_60_s_after_vm_a_restarts_without_its_contact(
    lab: Lab, pbx, phones: SippRunner, report_figure
) -> None:
    trunk = lab.trunks[0]
    registrar = pbx[trunk["registrar"]]
    # A registrar that lost the trunk's contact (as a rebuilt VM would) must get it back.
    cli(registrar, "database deltree registrar/contact")
    restart_asterisk(registrar)
    back = wait_for(lambda: "contact              : sip:" in cli(registrar, f"pjsip show aor {trunk['name']}"),
                    timeout=60, step=1)
    assert back is not None, cli(registrar, f"pjsip show aor {trunk['name']}")
    report_figure(f"{trunk['registrar']} restarted: {trunk['registrant']} registered again after", back)
    caller, callee = users_on(lab, trunk["registrar"])[0], users_on(lab, trunk["registrant"])[0]
    call, answered = call_across(lab, phones, caller, callee)
    assert call.completed and answered.answered, call.log


@pytest.mark.local_lab  # a converge: run beside Molecule's, where make test has the time
def test_a_re_run_starts_and_enables_again_the_services_someone_stopped(
    lab: Lab, pbx, phones: SippRunner, converge
) -> None:
    # A re-run asks each PBX which services are down and starts only those (the package
    # task's check): the check must see a stopped service and one no longer started at boot.
    trunk = lab.trunks[0]
    registrar, registrant = pbx[trunk["registrar"]], pbx[trunk["registrant"]]
    stopped = ((registrar, "fail2ban"), (registrant, "asterisk"))
    for host, name in stopped:
        host.check_output(f"service {name} stop && update-rc.d {name} disable")
    assert wait_for(lambda: registrant.run("pgrep -x asterisk").rc == 1, 30, 0.5) is not None
    done = converge()
    assert done.returncode == 0, done.stdout[-3000:]
    for host, name in stopped:
        assert host.run(f"service {name} status").rc == 0, name
        assert host.run(f"ls /etc/rc2.d/S??{name}").rc == 0, f"{name} does not start at boot"
    registered = wait_for(
        lambda: re.search(rf"{trunk['name']}/\S+\s+\S+\s+Registered", cli(registrant, "pjsip show registrations")),
        timeout=30, step=0.5)
    assert registered is not None, cli(registrant, "pjsip show registrations")
    caller, callee = users_on(lab, trunk["registrar"])[0], users_on(lab, trunk["registrant"])[0]
    call, answered = call_across(lab, phones, caller, callee)
    assert call.completed and answered.answered, call.log


# ---------------------------------------------------------------- changes keep calls up

@pytest.mark.local_lab  # any lab; run beside Molecule's, where make test has the time
def test_adding_a_user_keeps_calls_in_progress_up(lab: Lab, phones: SippRunner, converge, report_figure) -> None:
    caller, callee = users_on(lab, "vm-a")[:2]
    registrar = lab.addresses["vm-a"]
    newcomer = {"name": "newcomer", "extension": "6099", "host": "vm-a"}
    answering = phones.answer_in_background(callee, secret=lab.secret(callee), registrar=registrar,
                                            capture=True, timeout=120)
    with concurrent.futures.ThreadPoolExecutor() as pool:
        call = pool.submit(phones.call, caller, lab.secret(caller), registrar, lab.user(callee)["extension"],
                           seconds=45)
        time.sleep(8)
        started = time.monotonic()
        # Extra variables reach every pod: a pod whose secrets are all chosen (Molecule's pod 2)
        # would rightly refuse a user without one, so the newcomer's is generated everywhere.
        changed = converge({"lab_users": [*lab.users, newcomer], "lab_generate_secrets": True})
        report_figure("site.yml adding a user, during a call", time.monotonic() - started)
        call = call.result()
    try:
        assert changed.returncode == 0, changed.stdout[-3000:]
        assert call.completed, call.log
        heard = answering.wait()
        assert heard.bye_received
        # The caller's voice kept arriving all along: no gap of a second or more.
        times = sorted(p.time for p in heard.received if p.payload_type == 0)
        assert times and max(b - a for a, b in zip(times, times[1:])) < 1.0
        assert echoed_fraction(call.sent, heard.received, after=1.0) > 0.9
        secrets = yaml_secrets(lab)
        assert phones.register("newcomer", secrets["newcomer"], registrar) == 200
    finally:
        restored = converge()
        assert restored.returncode == 0, restored.stdout[-3000:]


def yaml_secrets(lab: Lab) -> dict[str, str]:
    """User secrets as stored now (a converge may have generated new ones)."""
    import yaml  # noqa: PLC0415

    return yaml.safe_load(Path(lab.credentials_file).read_text())["pods"][lab.pod]["users"]
