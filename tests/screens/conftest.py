"""The real kiosk app under Xvfb against the simulated world (see drivers/demo/stack.py)."""

from pathlib import Path

import pytest

from drivers.demo.stack import DemoStack, VirtualScreen, run_journey
from tests.central.stub_http import ApiClient

JOURNEYS = Path(__file__).resolve().parents[2] / "journeys"


@pytest.fixture(scope="session")
def screen():
    with VirtualScreen() as display:
        yield display


@pytest.fixture
def stack(tmp_path):
    with DemoStack(tmp_path / "stack") as world:
        yield world


@pytest.fixture
def central(stack):
    with ApiClient(stack.central.url + "/api/v1", timeout_s=10) as client:
        yield client


@pytest.fixture
def journey(stack, screen, tmp_path):
    """Run a journey from journeys/ with `on_screen` card actions; returns the run."""
    def run(name, on_screen):
        return run_journey(stack, JOURNEYS / (name + ".json"), tmp_path / name, display=screen.display,
                           on_screen=on_screen, timeout_s=180)
    return run
