# The README's contract: `make demo` and `make test` on a fresh Debian machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages: PC/SC with the virtual reader, a virtual screen for Kivy,
# fonts that cover Arabic and Latin, the GL and input libraries Kivy's SDL2
# needs, the toolchain pyscard builds with, libusb for USB printers,
# Chromium and its chromedriver to look at central's verification page and
# drive the staff dashboard in the tests, espeak-ng to make the spoken prompts,
# node to evaluate the install script's polkit rule as polkit would (a
# JavaScript engine), and PostgreSQL, of which central's tests start a
# throwaway cluster (tests/postgres_server.py).
APT_PACKAGES := \
	python3 python3-venv python3-dev gcc nodejs \
	python3-pip python3-pyscard \
	pcscd vsmartcard-vpcd libpcsclite-dev swig \
	xvfb xauth x11-utils \
	fonts-dejavu-core fonts-hosny-amiri \
	libgl1 libgl1-mesa-dri libegl1 libgles2 libmtdev1 \
	libxrender1 libxi6 libxext6 libxrandr2 libxcursor1 libxinerama1 libxxf86vm1 \
	libusb-1.0-0 tzdata chromium chromium-driver espeak-ng postgresql

# python3-pip and python3-pyscard: a release's version is installed as on a kiosk, by the
# system's pip into a virtual environment that sees Debian's pyscard (tests/kiosk/test_install_*.py).
.PHONY: install apt venv prompts test demo soak bench clean release

install: apt venv

apt:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:" $$missing; \
		$(SUDO) apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed

# The device package in editable mode with every extra, and the checkout on the
# path for what the device never installs: central and the simulators, with
# their commands.
$(VENV)/.installed: setup.py
	[ -x $(PY) ] || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[central,sim,dev]'
	echo "$(CURDIR)" > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/citizen-kiosk-checkout.pth"
	for tool in kiosk-central:central.cli kiosk-sim:drivers.demo.sim_cli; do \
		printf '#!%s\nimport sys\nfrom %s import main\nsys.exit(main())\n' "$(CURDIR)/$(PY)" "$${tool#*:}" \
			> $(VENV)/bin/$${tool%%:*}; \
		chmod +x $(VENV)/bin/$${tool%%:*}; \
	done
	touch $@

# The screens' spoken prompts, made with espeak-ng from the catalogues (screens/prompts.py);
# a recording put in their place is kept (--keep-recordings).
PROMPTS := .build/prompts
prompts: $(PROMPTS)/.made

$(PROMPTS)/.made: kiosk/locale/ar/LC_MESSAGES/kiosk.po kiosk/locale/en/LC_MESSAGES/kiosk.po screens/prompts.py | install
	$(PY) -m screens.prompts build $(PROMPTS)
	touch $@

test: install prompts
	$(PY) -m pytest

demo: install prompts
	$(PY) -m drivers.demo --out demo-out

# Kill the kiosk at random moments of paid journeys on the real stack, restart it, and check that
# every charge is settled (drivers/demo/soak.py); `make soak TRIALS=20` for a short run. It ends with
# `trials: T lost: L duplicated: D unsettled: U`; failed trials' logs, screenshots and pages in soak-out/.
TRIALS ?= 500
soak: install prompts
	$(PY) -m drivers.demo.soak --trials $(TRIALS) --out soak-out

# The bundle a kiosk installs (release/build.py): dist/kiosk-<version>-linux_aarch64.tar for the
# Raspberry Pi (Bookworm, Python 3.11), or PLATFORM=host for this machine. VERSION sets the
# release's version in the built copy (default: setup.py's); TRUSTED_ROOT ships the release
# repository's root.json in the firmware (`kiosk-central release keys init DIR` writes it).
PLATFORM ?= rpi
release: install
	$(PY) -m release.build --platform $(PLATFORM) --out dist $(if $(VERSION),--version $(VERSION)) \
		$(if $(TRUSTED_ROOT),--trusted-root $(TRUSTED_ROOT))

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) demo-out soak-out .build .pytest_cache .hypothesis
