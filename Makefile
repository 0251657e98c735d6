# asterisk-lab: `make lab` builds and starts the local lab, `make test` runs every test.
SHELL := /bin/bash
VENV := .venv
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
PLAYBOOK := ansible-playbook -i inventory/local
# Pods of the local lab (make lab PODS=4): each its own VM A, VM B, tester and provider.
PODS ?= 1
export LAB_PODS := $(PODS)

.PHONY: lab test report grade down wipe images docker venv lint unit molecule local-lab-test local-lab-free local-lab-checks labs bench clean-images

## lab: build and start the local lab (PODS pods of VM A, VM B, tester, provider), write the phone cards
lab: venv docker
	$(PLAYBOOK) playbooks/local-lab-up.yml
	$(PLAYBOOK) site.yml

## test: lint, unit tests, then the Molecule scenario (converge, idempotence, calls through SIPp) and the
## local lab's tests (make local-lab-checks) at the same time (scripts/test-labs.sh)
test: lint unit labs

labs: images
	bash scripts/test-labs.sh

## report: reproduce the lab report's questions against the local lab (or LAB_INVENTORY), with captures,
## SIP ladders, RTP tables and a verdict each, in $(REPORT)/<pod>/index.html
REPORT ?= lab-report
report: venv docker
	pytest -q -m question --every-pod --lab-report $(REPORT) tests/lab

## grade: grade labs built by hand (GRADING=file, see grading.example.yml): the report's questions asked of
## every group's lab, nothing of it changed; the report in $(REPORT), one row per group and question in summary.csv
grade: venv docker
	@test -n "$(GRADING)" || { echo "make grade: set GRADING to the grading file (see grading.example.yml)"; exit 1; }
	pytest -q --lab-grading $(GRADING) --lab-report $(REPORT) tests/lab

## down: remove every pod's containers and networks (students' work, images, apt cache and credentials stay)
down: venv
	$(PLAYBOOK) playbooks/local-lab-down.yml

## wipe: like down, and delete the students' work too (voicemail, recordings, prompts, queue logins)
wipe: venv
	$(PLAYBOOK) playbooks/local-lab-down.yml -e local_lab_delete_student_work=true

images: venv docker
	$(PLAYBOOK) playbooks/images.yml

docker:
	bash scripts/ensure-docker.sh

# Ansible loads every filter and action plugin again in each worker, a process per host and
# task. Compiled here, Python does not compile them again in each, even where
# PYTHONDONTWRITEBYTECODE keeps it from saving what it compiled (about 3 s of CPU in an
# 8-pod re-run, bench/pods.py); a plugin edited since is compiled as before.
venv: $(VENV)/.installed
	@$(VENV)/bin/python -m compileall -q plugins roles/*/action_plugins playbooks/action_plugins
$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

lint: venv
	yamllint --strict .
	ansible-lint

unit: venv
	pytest -q -n auto tests/unit

molecule: images
	molecule test --no-command-borders

# The local lab as `make lab` builds it: what students made outlives make down && make lab, and
# real softphones (baresip) work from the phone settings the lab wrote (tests/lab/test_softphones.py).
# It needs a machine without a local lab or students' work (it would mix in, then be wiped),
# and leaves none.
local-lab-test: local-lab-free
	$(MAKE) lab
	$(MAKE) local-lab-checks
	$(MAKE) wipe

# The tests that need the local lab itself, run against a lab `make lab` has started: and the
# report's questions with the default description (not Molecule's shortened timings), the
# report's own checks, and grading that lab once broken by hand (tests/lab/test_grading.py).
local-lab-checks: venv
	pytest -q -m "local_lab or softphones or question or report_check" --lab-report $(REPORT) tests/lab

local-lab-free: venv docker
	@if docker ps -aq --filter label=asterisk-lab.lab=asterisk-lab | grep -q . \
	  || docker volume ls -q --filter label=asterisk-lab.lab=asterisk-lab | grep -q .; then \
	  echo "make local-lab-test: this machine has a local lab or its students' work, which the test" \
	       "would mix in and then delete; make wipe first if it may go"; exit 1; fi

## bench: pods' provision, re-run, 30-pod validation and memory against floors (BENCH_PODS=1,2,4,8)
bench: images
	python3 bench/pods.py $(if $(BENCH_PODS),--pods $(BENCH_PODS))
