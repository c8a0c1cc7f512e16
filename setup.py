"""citizen-kiosk: the device's firmware, and nothing the device does not run.

`pip install citizen-kiosk` installs the kiosk (its core, drivers, screens and
outbox) with the libraries a Raspberry Pi needs for them. The reference
central service (`central/`) and the simulators (`drivers/card_sim`,
`drivers/printer_sim`, `drivers/terminal_sim`, `drivers/demo`) are development tools that run from a
source checkout: the extras `[central]`, `[sim]` and `[dev]` bring the
libraries they need, and `make install` sets all of it up.

Every device is found by name through the entry points below, so adding a
printer model adds a driver and one line here, never an edit of the core.
"""

from setuptools import find_packages, setup

# Not part of the device: they stay in the source checkout.
DEVELOPMENT_ONLY = ["central", "central.*", "drivers.card_sim", "drivers.card_sim.*", "drivers.printer_sim",
                    "drivers.printer_sim.*", "drivers.terminal_sim", "drivers.terminal_sim.*", "drivers.demo",
                    "drivers.demo.*"]

CENTRAL_REQUIRES = ["fastapi>=0.110", "uvicorn>=0.29", "sqlalchemy>=2.0,<3", "pydantic>=2",
                    "requests-http-signature>=2.0,<3",   # checks the kiosks' signatures (central/device_auth.py)
                    "zxing-cpp>=2.2",   # `kiosk-central verify` reads the QR code off a photo
                    "alembic>=1.13,<2",   # central's schema migrations (central/migrations/)
                    "psycopg[binary]>=3.1,<4",   # central on PostgreSQL (postgresql+psycopg://)
                    "jinja2>=3.1,<4",   # the staff dashboard's pages (central/dashboard/templates)
                    "python-multipart>=0.0.18"]   # a release bundle's upload (central/dashboard/release_pages.py)

setup(
    name="citizen-kiosk",
    version="0.1.0",
    description="Self-service government kiosk: national ID, certificates, card payment, printed documents",
    python_requires=">=3.11",
    packages=find_packages(include=["kiosk*", "drivers*", "screens*", "offline*"], exclude=DEVELOPMENT_ONLY),
    py_modules=[],
    package_data={
        # updates/root.json: the release repository's root, the trust anchor `make release` puts in the firmware
        "kiosk": ["locale/*/LC_MESSAGES/*.po", "updates/root.json"],
        "screens": ["*.kv"],
    },
    install_requires=[
        "kivy==2.3.1",
        "pyscard>=2.0.5,<3",     # on a kiosk Debian's python3-pyscard (bookworm: 2.0.5), seen by its venv
        "python-escpos[usb,serial]>=3.1,<4",   # with pyusb and pyserial: USB and serial printers
        "python-bidi>=0.6,<0.7",
        "arabic-reshaper>=3.0,<4",
        "babel>=2.14",
        "cryptography>=42",
        "tuf>=7,<8",             # signed updates: ngclient verifies the release repository (kiosk/updates/)
        "requests>=2.31,<3",
        "requests-http-signature>=2.0,<3",   # every call to central signed with the device key (RFC 9421)
        "pillow>=10",
        "qrcode>=7.4",
        "tzdata",                # time zones where the system has none
        "gpiozero>=2.0,<3",      # the cabinet's light, chime and switches (drivers/gpio_cabinet.py)
        # gpiozero's pin factory on a Raspberry Pi 4 and 5 (built against Debian's liblgpio-dev there)
        "lgpio>=0.2; platform_machine == 'aarch64' or platform_machine == 'armv7l'",
    ],
    extras_require={
        # the reference central service, run from a checkout
        "central": CENTRAL_REQUIRES,
        # the simulators and the demo stack, which also run central
        "sim": CENTRAL_REQUIRES,
        "dev": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "hypothesis>=6.100",
            "httpx2",                  # Starlette's TestClient, for central's ASGI-level tests
            "zxing-cpp>=2.2",
            "build>=1.0",
            "persist-queue>=1.0,<2",   # `make bench`: the outbox's enqueue against SQLiteAckQueue's
            "selenium>=4.20,<5",       # the dashboard's test in Debian's Chromium (its chromedriver, nothing downloaded)
        ],
    },
    entry_points={
        "console_scripts": [
            "kiosk=kiosk.cli:main",
        ],
        # One group per port: `<port>.backend = "<name>"` in kiosk.toml picks the factory.
        "kiosk.card_readers": [
            "pyscard=drivers.pyscard_reader:from_config",
            "fake=drivers.fakes.card_reader:from_config",
        ],
        "kiosk.payment_terminals": [
            "nexo=drivers.nexo_terminal:from_config",
            "fake=drivers.fakes.payment_terminal:from_config",
        ],
        "kiosk.receipt_printers": [
            "escpos=drivers.escpos_printer:from_config",
            "fake=drivers.fakes.receipt_printer:from_config",
        ],
        "kiosk.cabinets": [
            "none=kiosk.ports.cabinet:no_cabinet",
            "fake=drivers.fakes.cabinet:from_config",
            "gpio=drivers.gpio_cabinet:from_config",
        ],
        "kiosk.outboxes": [
            "sqlite=offline.delivery:from_config",
        ],
        "kiosk.frontends": [
            "kivy=screens.launch:run",
        ],
        "kiosk.tools": [
            "card-check=drivers.card_check:run",
            "queue=offline.queue_cli:run",
            "outbox-check=offline.outbox_check:check",   # `kiosk selftest`: the state database
            "audit=offline.audit_cli:run",
            "console-switch=screens.console_switch:run",   # `kiosk console-switch`: Ctrl+Alt+F<n> off
            "discover=drivers.device_discovery:discover",   # `kiosk provision --setup`: readers, printers, ports
        ],
    },
)
