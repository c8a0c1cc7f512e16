"""`[cabinet]`: the GPIO pins, the wiring and the waits, checked at start with one line naming the key."""

import pytest

from kiosk import config
from kiosk.errors import ConfigError
from tests.kiosk.test_config import GOOD, write  # noqa: F401  (the fixture)

WIRED = """
    [cabinet]
    backend = "gpio"
    light_red_pin = 17
    light_green_pin = 27
    light_blue_pin = 22
    buzzer_pin = 18
    door_pin = 5
    maintenance_pin = 6
    help_pin = 13
    paper_low_pin = 19
    active_low = false
    bounce_s = 0.02
    hold_s = 1.5
"""


def test_a_wired_cabinet_is_read_as_written(write):
    cabinet = config.load(write(GOOD + WIRED)).cabinet
    assert (cabinet.backend, cabinet.light_red_pin, cabinet.door_pin, cabinet.paper_low_pin) == ("gpio", 17, 5, 19)
    assert (cabinet.active_low, cabinet.bounce_s, cabinet.hold_s) == (False, 0.02, 1.5)


def test_nothing_is_wired_by_default(write):
    cabinet = config.load(write(GOOD)).cabinet
    assert [getattr(cabinet, key) for key in config.CABINET_PINS] == [0] * len(config.CABINET_PINS)
    assert cabinet.active_low and cabinet.bounce_s == 0.05 and cabinet.hold_s == 0


@pytest.mark.parametrize("extra, message", [
    ("door_pin = 28\n", "`cabinet.door_pin` must be a BCM GPIO number from 1 to 27 (0: not wired)"),
    ("help_pin = -1\n", "`cabinet.help_pin` must be a BCM GPIO number"),
    ("door_pin = 5\nhelp_pin = 5\n", "`cabinet.help_pin` is GPIO 5, already `cabinet.door_pin`"),
    ("light_red_pin = 17\n", "must all be wired, or none"),
    ("bounce_s = 2\n", "`cabinet.bounce_s` must be between 0 and 1"),
    ("hold_s = -1\n", "`cabinet.hold_s` must be between 0 and 10"),
    ("door_pin = \"5\"\n", "`cabinet.door_pin` must be a whole number"),
    ("dor_pin = 5\n", "unknown key `cabinet.dor_pin`: did you mean `door_pin`?"),
])
def test_a_bad_cabinet_names_its_key(write, extra, message):
    with pytest.raises(ConfigError) as caught:
        config.load(write(GOOD + "[cabinet]\n" + extra))
    assert message in str(caught.value) and "\n" not in str(caught.value)
