"""Signed updates: the kiosk finds, downloads and verifies its next release (The Update Framework).

`fetch.py` is the way in (`check`, `download`, `latest_release`, `named_release`);
python-tuf's ngclient verifies the repository's metadata, starting from the
root the firmware ships (`root.json` here, put in by the release build) and
the metadata trusted since (`updates.metadata_dir`); `fetcher.py` is its
HTTP, central's CA pinned; `resume.py` downloads a bundle so that a cut
download goes on where it stopped, and nothing uses it before its length and
hash are the signed ones; `errors.py` says why an update did not happen.
Which release a kiosk takes is `offer.py`'s (staged rollouts); installing a
verified bundle is `install.py`'s, with `bundle.py`, `guard.py` and `trial.py`.
"""
