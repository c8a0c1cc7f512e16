"""The updates' HTTP: one requests session with central's CA pinned, and python-tuf's ngclient over it.

The session is set up as the kiosk's other calls to central are
(kiosk.central_client): TLS checked against `central.ca_file` when the kiosk
pins it (passed on each request, so that REQUESTS_CA_BUNDLE cannot replace
it), a connect and a read timeout on every request, no retries by the
transport and no redirects followed. ngclient's metadata downloads go through
`SessionFetcher`; the bundle's own download (`resume.py`) through the same
session.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import requests
from requests.adapters import HTTPAdapter
from tuf.api import exceptions
from tuf.ngclient.fetcher import FetcherInterface
from urllib3.util.retry import Retry

# Connecting takes at most this long (or the read timeout, when shorter), as for central's other calls.
CONNECT_TIMEOUT_S = 3.0
CHUNK_BYTES = 256 * 1024


class PinnedSession:
    """A requests session to the release repository: `ca_file` pinned (None: the system's authorities),
    `timeout_s` the longest wait for a byte."""

    def __init__(self, *, ca_file: Path | None, timeout_s: float, user_agent: str) -> None:
        if ca_file is not None and not os.path.exists(ca_file):
            raise FileNotFoundError("central's CA file %s does not exist" % os.fspath(ca_file))
        self.verify: str | bool = os.fspath(ca_file) if ca_file is not None else True
        self.timeout = (min(CONNECT_TIMEOUT_S, timeout_s), timeout_s)
        self._http = requests.Session()
        self._http.headers["User-Agent"] = user_agent
        for scheme in ("http://", "https://"):
            self._http.mount(scheme, HTTPAdapter(max_retries=Retry(total=0, read=False, redirect=False)))

    def get(self, url: str, *, headers: dict[str, str] | None = None) -> requests.Response:
        """A streamed GET; the caller closes the response."""
        return self._http.get(url, headers=headers, stream=True, timeout=self.timeout, verify=self.verify,
                              allow_redirects=False)

    def close(self) -> None:
        self._http.close()


class SessionFetcher(FetcherInterface):
    """ngclient's fetcher over a PinnedSession. Only a 200 is content: any other status is a
    DownloadHTTPError (ngclient reads a 404 for the next root as "no newer root"), a timeout a
    SlowRetrievalError; ngclient bounds every length itself."""

    def __init__(self, session: PinnedSession) -> None:
        self._session = session

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            response = self._session.get(url)
        except requests.Timeout as exc:
            raise exceptions.SlowRetrievalError("no answer from %s in time" % url) from exc
        if response.status_code != 200:
            response.close()
            raise exceptions.DownloadHTTPError("HTTP %d for %s" % (response.status_code, url), response.status_code)
        return self._chunks(response)

    @staticmethod
    def _chunks(response: requests.Response) -> Iterator[bytes]:
        try:
            yield from response.iter_content(CHUNK_BYTES)
        except (requests.ConnectionError, requests.Timeout) as exc:
            raise exceptions.SlowRetrievalError("the answer stopped") from exc
        finally:
            response.close()
