"""The disk budget: a technician hears of a filling disk early, and nobody pays once it is nearly full."""

from __future__ import annotations

from kiosk.session import Reason, Step
from offline.disk_budget import LOW_ALERT, MB, RESERVE_ALERT, DiskBudget, DiskLevel
from tests.offline.kiosk_on_fakes import KioskOnFakes


class Disk:
    def __init__(self, free_mb: int) -> None:
        self.free_mb = free_mb

    def __call__(self) -> int:
        return self.free_mb * MB


def test_an_alert_once_per_threshold_crossed_and_payments_stop_in_the_reserve(tmp_path):
    disk = Disk(1000)
    alerts: list[str] = []
    budget = DiskBudget(tmp_path, alert_bytes=256 * MB, reserve_bytes=32 * MB, alert=alerts.append, free_bytes=disk)
    assert budget.level() is DiskLevel.PLENTY and budget.can_take_payment() and alerts == []
    disk.free_mb = 200
    assert budget.level() is DiskLevel.LOW and budget.can_take_payment()
    assert budget.level() is DiskLevel.LOW and alerts == [LOW_ALERT]                 # once, not at every look
    disk.free_mb = 20
    assert not budget.can_take_payment() and alerts == [LOW_ALERT, RESERVE_ALERT]
    disk.free_mb = 100
    assert budget.can_take_payment() and alerts == [LOW_ALERT, RESERVE_ALERT]        # better: no new alert
    disk.free_mb = 20
    assert not budget.can_take_payment() and alerts == [LOW_ALERT, RESERVE_ALERT, RESERVE_ALERT]


def test_the_real_disk_is_read(tmp_path):
    budget = DiskBudget(tmp_path, alert_bytes=0, reserve_bytes=0, alert=lambda kind: None)
    assert budget.free() > 0 and budget.level() is DiskLevel.PLENTY


def test_a_disk_that_cannot_be_read_refuses_nothing(tmp_path):
    def unreadable() -> int:
        raise OSError(5, "Input/output error")
    budget = DiskBudget(tmp_path, alert_bytes=MB, reserve_bytes=MB, alert=lambda kind: None, free_bytes=unreadable)
    assert budget.can_take_payment()


def test_a_nearly_full_disk_makes_paid_services_unavailable_before_any_money_is_taken(tmp_path):
    disk = Disk(10)
    kiosk = KioskOnFakes(tmp_path / "state", free_bytes=disk, reserve_bytes=32 * MB)
    try:
        kiosk.start()
        kiosk.pay()
        kiosk.run_until(Step.FAILED, reason=Reason.PAYMENT_UNAVAILABLE, refunded=False)
        assert kiosk.payment.statement == () and kiosk.journal.unfinished() == []
        assert RESERVE_ALERT in kiosk.alerts
        kiosk.take_card()
        disk.free_mb = 5000                                   # a technician made room
        kiosk.pay()
        kiosk.run_until(Step.TAKE_CARD, printed=True)
        assert len(kiosk.payment.statement) == 1
    finally:
        kiosk.stop()
