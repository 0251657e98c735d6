#!/usr/bin/env python3
"""How the lab scales with its pods, each figure beside its floor measured in the same run.

1. cold provision of N pods (fresh PBX containers, then site.yml), against its floor: the
   same Debian packages installed by plain `apt-get update && apt-get install` in as many
   fresh containers, all at once, through the same apt cache. The cache is warmed first
   (untimed), so both see a warm cache. The floor is measured just before the lab's run and
   again once its PBXs are stopped, and is the mean of the two: this shared machine's speed
   drifts from one minute to the next (run at the same moment, the lab's apt-get and the
   floor's took the same time), so one floor a minute apart from the lab misstates it either
   way. Target: lab <= 1.5 x floor for every N.
2. idempotent re-run (site.yml again, best of 3) of the largest N and of 1 pod: it must
   change nothing, and the largest N must take <= 3 x the time of 1 pod. Both run in turns
   on the largest N's lab, the 1-pod one through an inventory of its pod 1 alone. Beside
   each, the CPU the whole machine (its containers included) was busy meanwhile, against
   what its cores could give: near all of it means the run waited on the cores.
3. validation (playbooks/validate.yml, every host's view) of a 30-pod inventory whose 60
   hosts are made up and never contacted, best of 3, beside a one-trivial-task play over
   the same hosts. Target: < 10 s.
4. memory of one running pod after provisioning: its two PBXs, from `docker stats`.

It only prints: nothing is asserted. Run from anywhere, after `make images`:
    python3 bench/pods.py [--pods 1,2,4,8] [--validation-only]
The bench's inventory lives in a temp dir: pods pod<k> on networks asterisk-lab-bench-pod<k>
(172.29.<k>.0/24), containers, networks and apt cache labelled asterisk-lab-bench (its
local_lab_name), so `make lab`'s lab and Molecule's are never touched. Everything is removed
at the end except the cache's volume (asterisk-lab-bench-apt-cache), kept for the next run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_PYTHON = REPO / ".venv/bin/python3"

try:
    import yaml
except ImportError:  # the system's Python: run again in the project's environment
    if Path(sys.executable).resolve() != VENV_PYTHON.resolve() and VENV_PYTHON.exists():
        os.execv(str(VENV_PYTHON), [str(VENV_PYTHON), __file__, *sys.argv[1:]])
    raise

NAME = "asterisk-lab-bench"  # local_lab_name: prefix and label of all the bench makes
LABEL = "asterisk-lab.lab"  # roles/local_lab local_lab_label
CACHE = f"http://{NAME}-apt-cache:3142"
IMAGE = "asterisk-lab/base:latest"
PARTS = {"vm-a": 153, "vm-b": 154}
PROVIDER_OCTET = 200  # nothing answers there: site.yml does not need the provider
PROVIDER_ACCOUNT = 1040
DEFAULT_PODS = (1, 2, 4, 8)
VALIDATION_PODS = 30
REPEATS = 3
COLD_TARGET = 1.5  # lab <= 1.5 x floor
RERUN_TARGET = 3.0  # largest N <= 3 x 1 pod
VALIDATION_TARGET = 10.0  # seconds


class BenchError(Exception):
    """A step failed: the message says which, with the end of its output."""


@dataclass
class Pass:
    seconds: float
    output: str
    busy_cpu: float  # CPU seconds the whole machine (containers included) spent meanwhile


def machine_busy_cpu() -> float:
    """CPU seconds this machine has been busy since boot, all cores (/proc/stat: user, nice,
    system, irq, softirq), so that a run's share tells whether it was bound by the cores."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6)) / os.sysconf("SC_CLK_TCK")


def verdict(ok: bool) -> str:
    return "meets" if ok else "MISSES"


def run(cmd: list[str], what: str, env: dict[str, str] | None = None) -> Pass:
    """Run `cmd` from the repository, timed; a failure raises BenchError with its output."""
    start, busy = time.monotonic(), machine_busy_cpu()
    result = subprocess.run(cmd, cwd=REPO, text=True, capture_output=True, env=env)
    seconds, busy = time.monotonic() - start, machine_busy_cpu() - busy
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        raise BenchError(f"{what} failed ({' '.join(cmd)}):\n{tail}")
    return Pass(seconds, result.stdout, busy)


def playbook(inventory: Path, path: str, what: str, profile: bool = False) -> Pass:
    """ansible-playbook; with profile, its slowest tasks are told (ansible.posix.profile_tasks)."""
    env = {**os.environ, "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks"} if profile else None
    return run(["ansible-playbook", "-i", str(inventory), path], what, env)


def slowest(output: str, count: int = 3) -> str:
    """The `count` slowest tasks of a profiled run, e.g. "Install Asterisk 30.1 s, ..."."""
    # profile_tasks pads with dashes to the terminal's width: a long name leaves one.
    tasks = re.findall(r"^(\S.*?) -+ (\d+\.\d+)s$", output.split("TASKS RECAP")[-1], re.MULTILINE)
    return ", ".join(f"{name} {float(sec):.1f} s" for name, sec in tasks[:count]) or "(not profiled)"


def recap(output: str) -> dict[str, int]:
    """Sums of the PLAY RECAP's counters (ok, changed, unreachable, failed...)."""
    totals: dict[str, int] = {}
    for key, value in re.findall(r"(\w+)=(\d+)", output.split("PLAY RECAP")[-1]):
        totals[key] = totals.get(key, 0) + int(value)
    return totals


def role_packages() -> dict[str, list[str]]:
    """What the asterisk role installs on each part: its packages, plus the prompt tools on
    the part that hosts the services (lab_services_host, whose default is the reference lab).
    Read once, at the start: the role's files may change while the bench runs."""
    role = REPO / "roles/asterisk"
    found: dict[str, Any] = {}
    for path in (role / "defaults/main.yml", role / "vars/main.yml"):
        if path.exists():
            found.update(yaml.safe_load(path.read_text()) or {})
    specs = yaml.safe_load((role / "meta/argument_specs.yml").read_text())["argument_specs"]
    services = specs.get("lab", {}).get("options", {}).get("lab_services_host", {}).get("default")
    lab_yml = REPO / "playbooks/group_vars/all/lab.yml"
    if services is None and lab_yml.exists():  # before the settings moved to the role
        services = yaml.safe_load(lab_yml.read_text())["lab_services_host"]
    if "asterisk_packages" not in found or services is None:
        raise BenchError("cannot find asterisk_packages or lab_services_host in roles/asterisk")
    return {
        part: [*found["asterisk_packages"], *(found.get("asterisk_prompt_packages", []) if part == services else [])]
        for part in PARTS
    }


def container(pod: int, part: str) -> str:
    return f"{NAME}-pod{pod}-{part}"


def network(pod: int) -> str:
    return f"{NAME}-pod{pod}"


def write_inventory(path: Path, hosts: dict[str, dict[str, Any]], group_vars: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump({"all": {"vars": group_vars, "children": {"pbx": {"hosts": hosts}}}}))
    return path


def bench_inventory(folder: Path, pods: int) -> Path:
    """pods pods of two PBX containers each (no tester, no provider: provisioning needs none)."""
    hosts: dict[str, dict[str, Any]] = {}
    for k in range(1, pods + 1):
        subnet = f"172.29.{k}"
        for part, octet in PARTS.items():
            hosts[f"pod{k}-{part}"] = {
                "ansible_host": container(k, part),
                "ansible_connection": "community.docker.docker",
                "ansible_python_interpreter": "/usr/bin/python3",
                "lab_pod": f"pod{k}",
                "lab_part": part,
                "lab_address": f"{subnet}.{octet}",
                "lab_provider_address": f"{subnet}.{PROVIDER_OCTET}",
                "lab_provider_username": str(PROVIDER_ACCOUNT + k - 1),
                "lab_apt_proxy": CACHE,
                "lab_credentials_file": str(folder / "credentials.yml"),
                "local_lab_network": network(k),
                "local_lab_subnet": f"{subnet}.0/24",
            }
    # Each count starts cold: removing a bench's pods deletes their students' work volumes
    # too (prompts spoken earlier would otherwise be found, not made).
    return write_inventory(folder / f"pods-{pods}.yml", hosts,
                           {"local_lab_name": NAME, "local_lab_delete_student_work": True})


def validation_inventory(folder: Path, pods: int) -> Path:
    """pods pods at made-up addresses (10.255.<k>.x); validate.yml never contacts them."""
    hosts: dict[str, dict[str, Any]] = {}
    for k in range(1, pods + 1):
        for part, octet in PARTS.items():
            hosts[f"pod{k}-{part}"] = {
                "ansible_host": f"10.255.{k}.{octet}",
                "lab_pod": f"pod{k}",
                "lab_part": part,
                "lab_address": f"10.255.{k}.{octet}",
                "lab_provider_address": f"10.255.{k}.{PROVIDER_OCTET}",
                "lab_provider_username": str(PROVIDER_ACCOUNT + k - 1),
                "lab_credentials_file": str(folder / "credentials.yml"),
            }
    return write_inventory(folder / "hosts.yml", hosts, {})


# ---- 3. validation of a 30-pod inventory -------------------------------------------------

def bench_validation(pods: int) -> list[str]:
    with tempfile.TemporaryDirectory(prefix=f"{NAME}-validate-") as tmp:
        inventory = validation_inventory(Path(tmp), pods)
        passes = [playbook(inventory, "playbooks/validate.yml", "validate.yml", profile=True) for _ in range(REPEATS)]
        floors = [playbook(inventory, "bench/trivial-play.yml", "the trivial play") for _ in range(REPEATS)]
    fastest = min(passes, key=lambda p: p.seconds)
    best, floor = fastest.seconds, min(p.seconds for p in floors)
    counts = recap(passes[-1].output)
    untouched = counts.get("unreachable", 0) == 0 and counts.get("failed", 0) == 0
    ok = best < VALIDATION_TARGET and untouched
    return [
        f"validation, {pods} pods ({2 * pods} hosts, none contacted), best of {REPEATS}:"
        f" {best:6.1f} s   floor (one trivial task per host) {floor:5.1f} s"
        f"   target < {VALIDATION_TARGET:.0f} s: {verdict(ok)}"
        + ("" if untouched else f"  (recap: {counts})"),
        f"  slowest tasks: {slowest(fastest.output)}",
    ]


# ---- containers ---------------------------------------------------------------------------

def docker(*args: str, what: str) -> Pass:
    return run(["docker", *args], what)


def fresh_container(name: str, pod: int) -> None:
    """A bench container from the base image on pod's network, labelled for local-lab-down."""
    docker("run", "-d", "--name", name, "--hostname", name, "--network", network(pod),
           "--label", f"{LABEL}={NAME}", IMAGE, what=f"starting {name}")  # fmt: skip


def remove(names: list[str]) -> None:
    if names:
        subprocess.run(["docker", "rm", "-f", *names], cwd=REPO, capture_output=True)


def install_all(jobs: dict[str, list[str]]) -> float:
    """Seconds for apt-get to install each container's packages, all containers at once."""
    proxy = f"-o Acquire::http::Proxy={CACHE}"
    script = (f"apt-get -q {proxy} update && DEBIAN_FRONTEND=noninteractive apt-get install -y -q"
              f" {proxy} --no-install-recommends \"$@\"")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix=f"{NAME}-apt-") as tmp:
        logs = {name: open(Path(tmp) / name, "w+") for name in jobs}  # noqa: SIM115
        start = time.monotonic()
        procs = {
            name: subprocess.Popen(
                ["docker", "exec", name, "sh", "-c", script, "sh", *names],
                stdout=logs[name], stderr=subprocess.STDOUT)  # fmt: skip
            for name, names in jobs.items()
        }
        codes = {name: proc.wait() for name, proc in procs.items()}
        seconds = time.monotonic() - start
        for name, code in codes.items():
            if code != 0:
                logs[name].seek(0)
                tail = "\n".join(logs[name].read().splitlines()[-30:])
                raise BenchError(f"apt-get failed in {name}:\n{tail}")
        for log in logs.values():
            log.close()
    return seconds


def warm_cache(packages: dict[str, list[str]]) -> float:
    """Fill the cache with every package a PBX installs (untimed figure; returns seconds)."""
    name = f"{NAME}-warm"
    try:
        fresh_container(name, 1)
        return install_all({name: sorted({p for names in packages.values() for p in names})})
    finally:
        remove([name])


def apt_floor(pods: int, packages: dict[str, list[str]]) -> float:
    """The role's packages by plain apt-get, in 2 x pods fresh containers, all at once."""
    names = {f"{NAME}-floor-pod{k}-{part}": (k, part) for k in range(1, pods + 1) for part in PARTS}
    try:
        for name, (k, _part) in names.items():
            fresh_container(name, k)
        return install_all({name: packages[part] for name, (_k, part) in names.items()})
    finally:
        remove(list(names))


def mebibytes(text: str) -> float:
    """docker stats' "123.4MiB" (or KiB, GiB, kB, MB...) in MiB."""
    match = re.fullmatch(r"([\d.]+)\s*([KMGT]?i?B)", text.strip(), re.IGNORECASE)
    if not match:
        raise BenchError(f"docker stats: cannot read memory {text!r}")
    value, unit = float(match[1]), match[2].upper()
    power = " KMGT".index(unit[0]) if unit[0] in "KMGT" else 0
    base = 1024 if "I" in unit or unit == "B" else 1000
    return value * base**power / 1024**2


def pod_memory(pod: int) -> dict[str, float]:
    names = [container(pod, part) for part in PARTS]
    out = docker("stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *names,
                 what="docker stats").output  # fmt: skip
    usage = {}
    for line in out.splitlines():
        name, mem = line.split("\t")
        usage[name] = mebibytes(mem.split("/")[0])
    return usage


# ---- 1, 2, 4: provisioning ------------------------------------------------------------------

@dataclass
class Cold:
    pods: int
    lab: float
    floor_before: float
    floor_after: float

    @property
    def floor(self) -> float:
        return (self.floor_before + self.floor_after) / 2


def bench_provisioning(pod_counts: list[str | int], folder: Path) -> list[str]:
    counts = sorted({int(n) for n in pod_counts})
    packages = role_packages()
    largest = max(counts)
    cold: list[Cold] = []
    profile = ""
    reruns: dict[int, tuple[float, int, float]] = {}  # best seconds, most changed, its busy CPU
    memory: dict[str, float] = {}
    warmed = 0.0
    down = bench_inventory(folder, largest)
    playbook(down, "playbooks/local-lab-down.yml", "removing a previous bench")
    try:
        for n in counts:
            inventory = bench_inventory(folder, n)
            (folder / "credentials.yml").unlink(missing_ok=True)
            print(f"... {n} pod(s): starting fresh containers", file=sys.stderr, flush=True)
            playbook(inventory, "playbooks/local-lab-up.yml", f"local-lab-up ({n} pods)")
            if not cold:
                print("... warming the apt cache (untimed)", file=sys.stderr, flush=True)
                warmed = warm_cache(packages)
            print(f"... {n} pod(s): floor (plain apt-get)", file=sys.stderr, flush=True)
            floor_before = apt_floor(n, packages)
            print(f"... {n} pod(s): site.yml", file=sys.stderr, flush=True)
            lab = playbook(inventory, "site.yml", f"site.yml cold ({n} pods)", profile=True)
            profile = slowest(lab.output)
            if n == largest and 1 in counts:
                # Taken in turns on this lab, the 1-pod re-run through an inventory of its pod 1
                # alone (what the 1-pod lab was): both then meet the same machine, whose speed
                # drifts by a third between minutes on a shared host.
                print(f"... 1 and {n} pod(s): idempotent re-runs, in turns", file=sys.stderr, flush=True)
                inventories = {1: bench_inventory(folder, 1), n: inventory}  # one entry when n is 1
                passes: dict[int, list[Pass]] = {k: [] for k in inventories}
                for _ in range(REPEATS):
                    for k, path in inventories.items():
                        passes[k].append(playbook(path, "site.yml", f"site.yml re-run ({k} pods)"))
                for k, runs in passes.items():
                    best = min(runs, key=lambda p: p.seconds)
                    reruns[k] = (best.seconds, max(recap(p.output).get("changed", 0) for p in runs), best.busy_cpu)
            if n == 1:
                memory = pod_memory(1)
            # With the lab's PBXs stopped, as idle as before its run (their running Asterisk
            # and fail2ban would slow this floor down); their networks and the cache stay.
            docker("stop", *(container(k, part) for k in range(1, n + 1) for part in PARTS), what="stopping the PBXs")
            print(f"... {n} pod(s): floor again (plain apt-get)", file=sys.stderr, flush=True)
            cold.append(Cold(n, lab.seconds, floor_before, apt_floor(n, packages)))
            playbook(down, "playbooks/local-lab-down.yml", f"local-lab-down ({n} pods)")
    finally:
        subprocess.run(["ansible-playbook", "-i", str(down), "playbooks/local-lab-down.yml"],
                       cwd=REPO, capture_output=True)  # fmt: skip

    lines = [f"cold provision (fresh containers, site.yml) vs floor (plain apt-get, as many"
             f" containers, at once; the mean of one run before the lab's and one after),"
             f" warm cache (warming took {warmed:.0f} s, untimed):"]  # fmt: skip
    for c in cold:
        ratio = c.lab / c.floor
        lines.append(f"  {c.pods:2d} pod(s), {2 * c.pods:2d} PBXs: lab {c.lab:7.1f} s   floor {c.floor:7.1f} s"
                     f" (before {c.floor_before:.1f}, after {c.floor_after:.1f})"
                     f"   ratio {ratio:4.2f}   target <= {COLD_TARGET} x floor: {verdict(ratio <= COLD_TARGET)}")
    lines.append(f"  slowest tasks of the cold site.yml, {largest} pods: {profile}")
    every = all(c.lab <= COLD_TARGET * c.floor for c in cold)
    lines.append(f"  every N ({', '.join(str(c.pods) for c in cold)}): {verdict(every)}")
    if 1 in reruns:
        one, one_changed, one_cpu = reruns[1]
        big, big_changed, big_cpu = reruns[largest]
        lines.append(f"idempotent re-run (site.yml, best of {REPEATS}): {largest} pods {big:6.1f} s"
                     f" changed={big_changed}   floor (1 pod) {one:6.1f} s changed={one_changed}")
        ok = big <= RERUN_TARGET * one and big_changed == 0 and one_changed == 0
        lines.append(f"  ratio {big / one:4.2f}   target {largest} pods <= {RERUN_TARGET} x 1 pod,"
                     f" 0 changed: {verdict(ok)}")
        cores = os.cpu_count() or 1
        lines.append(f"  the machine's busy CPU meanwhile: {largest} pods {big_cpu:.1f} s of {big * cores:.1f} s"
                     f" ({cores} cores), 1 pod {one_cpu:.1f} s of {one * cores:.1f} s")
    else:
        lines.append("idempotent re-run: not measured (needs 1 in --pods)")
    if memory:
        parts = ", ".join(f"{name.removeprefix(NAME + '-pod1-')} {mib:.1f}" for name, mib in memory.items())
        lines.append(f"memory of one running pod after provisioning (docker stats, both PBXs):"
                     f" {sum(memory.values()):.1f} MiB ({parts}); no target")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pods", default=",".join(map(str, DEFAULT_PODS)),
                        help="pod counts for the cold provision, e.g. 1,2,4,8 (default)")  # fmt: skip
    parser.add_argument("--validation-only", action="store_true",
                        help="only the 30-pod validation (no container)")  # fmt: skip
    args = parser.parse_args()
    counts = args.pods.split(",")
    if not all(n.isdigit() and 1 <= int(n) <= 200 for n in counts):
        parser.error(f"--pods: {args.pods!r} is not a list of pod counts from 1 to 200, e.g. 1,2,4,8")
    os.environ["PATH"] = f"{REPO / '.venv/bin'}:{os.environ['PATH']}"
    os.environ["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    os.environ["ANSIBLE_NOCOLOR"] = "1"
    lines: list[str] = []
    try:
        if not args.validation_only:
            with tempfile.TemporaryDirectory(prefix=f"{NAME}-") as tmp:
                lines += bench_provisioning(counts, Path(tmp))
        lines += bench_validation(VALIDATION_PODS)
    except BenchError as error:
        sys.exit(f"bench: {error}")
    print(f"asterisk-lab bench, {os.cpu_count()} cores")
    print("\n".join(lines))
    if not args.validation_only:
        print(f"(everything the bench made is removed; the cache volume {NAME}-apt-cache stays for the next run)")


if __name__ == "__main__":
    main()
