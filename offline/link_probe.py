"""A cheap look at whether central can be reached: GET its health path.

While messages wait out their backoff, the sync worker asks this every few
seconds, so that the link coming back is noticed at once rather than at the
end of a long wait; and after a message failed, it tells a link that is
down (every message waits) from a message central could not take (only its
transaction waits). Central answers ``{"status": "ok"}``; anything else
(no connection, a timeout, a 5xx, a page that is not that JSON) is "not
reachable". One short timeout, TLS verified, no redirect followed, no retry.
"""

from __future__ import annotations

import logging
import os

import requests

from kiosk import wire

log = logging.getLogger(__name__)

PROBE_TIMEOUT_S = 2.0


class HealthProbe:
    def __init__(self, base_url: str, *, timeout_s: float = PROBE_TIMEOUT_S,
                 ca_file: str | os.PathLike[str] | None = None) -> None:
        self._url = base_url.rstrip("/") + wire.HEALTH
        self._timeout = (timeout_s, timeout_s)
        self._http = requests.Session()
        self._http.verify = os.fspath(ca_file) if ca_file is not None else True

    def __call__(self) -> bool:
        """True when central answered its health check as it should, now."""
        try:
            response = self._http.get(self._url, timeout=self._timeout, verify=self._http.verify,
                                      allow_redirects=False)
            return response.status_code == 200 and response.json() == {"status": "ok"}
        except (requests.RequestException, ValueError, OSError) as exc:
            log.debug("probe.failed error=%s", type(exc).__name__)
            return False

    def close(self) -> None:
        self._http.close()
