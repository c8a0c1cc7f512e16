"""`kiosk-central verify`: an official checks a printed document offline, from its
scanned payload or a picture of the page, with nothing but central's public key."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import pytest
import qrcode
import zxingcpp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from PIL import Image

from central import cli, signing
from drivers.escpos_printer import EscposReceiptPrinter
from kiosk.documents import IssuedDocument
from kiosk.document_layout import render_certificate
from kiosk.ports.receipt_printer import PrintResult
from tests.central.stub_acquirer import StubAcquirer
from tests.central.stub_http import ApiClient

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

ROOT = Path(__file__).resolve().parents[2]
PLACE = {"ar": "دمشق - المزة", "en": "Damascus - Mazzeh"}


@pytest.fixture(scope="module")
def key_file(http: ApiClient, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Central's public key, fetched as an official would and kept in a file."""
    path = tmp_path_factory.mktemp("keys") / "document-key.pem"
    path.write_text(http.get("/signing-key").text, encoding="ascii")
    return path


@pytest.fixture
def issue(http: ApiClient, request_body: Callable[..., dict], seed_citizens: dict) -> Callable[..., IssuedDocument]:
    def issue(name: str = "Khaled", service_code: str = "civil-status-extract", **overrides: object) -> IssuedDocument:
        answer = http.post("/requests", json=request_body(seed_citizens[name], service_code, **overrides))
        assert answer.status_code == 200, answer.text
        return IssuedDocument.from_json(answer.json()["document"])
    return issue


def verify(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, list[str]]:
    """`kiosk-central verify ARGS` in-process: its exit code and the lines it printed."""
    code = cli.main(["verify", *map(str, args)])
    captured = capsys.readouterr()
    return code, (captured.out + captured.err).splitlines()


def text_file(tmp_path: Path, text: str, name: str = "scan.txt") -> Path:
    path = tmp_path / name
    path.write_text(text + "\n", encoding="utf-8")
    return path


def one_character_changed(payload: str, *, in_signature: bool) -> str:
    """`payload` with one character replaced so that it is still base45; in the signature
    (its last 96 characters) or in the claims."""
    start = len(payload) - 90 if in_signature else len(signing.PREFIX) + 30
    for at in range(start, len(payload) - 3):
        for other in signing.BASE45_ALPHABET:
            changed = payload[:at] + other + payload[at + 1:]
            if other != payload[at] and _is_base45(changed[len(signing.PREFIX):]):
                return changed
    raise AssertionError("no change found")


def _is_base45(text: str) -> bool:
    try:
        signing.base45_decode(text)
    except signing.InvalidPayload:
        return False
    return True


def print_certificate(document: IssuedDocument, language: str, printer_sim) -> Path:
    """The certificate laid out for the kiosk, sent as ESC/POS to the printer simulator; its PNG."""
    printed = len(printer_sim.jobs)
    outcome = EscposReceiptPrinter("127.0.0.1", printer_sim.port).print_job(render_certificate(document, language))
    assert outcome.result is PrintResult.PRINTED
    return printer_sim.wait_for_jobs(printed + 1, timeout=10)[printed].png_path


# --- the bar an official uses: a printed page and central's key ----------------------

def test_demo_key_verifies_a_certificate_printed_by_the_printer_simulator(tmp_path, own_central, present) -> None:
    """What `make demo` leaves behind is enough: its key file checks its printed page, offline."""
    from drivers.demo.stack import DemoStack

    with DemoStack(tmp_path / "stack") as stack, StubAcquirer() as acquirer:
        key_path = stack.save_document_key(tmp_path / "demo-out" / "document-key.pem")
        citizen = next(iter(stack.citizens.values()))
        # Central on the demo's database and document key, looking payments up at a stub
        # acquirer that knows this one (the demo's own central asks the terminal simulator's),
        # a kiosk enrolled there, and the citizen's card proven to it.
        with own_central("sqlite:///%s" % (stack.workdir / "central.sqlite3"), acquirer_url=acquirer.url) as (
                _central, api):
            answer = api.post("/requests", json={
                "request_id": "req-demo-1", "service_code": "civil-status-extract",
                "presence_id": present(citizen, "civil-status-extract", client=api),
                "language": "ar", "payment_id": acquirer.pay(150000), "place": PLACE}).json()
        document = IssuedDocument.from_json(answer["document"])
        png = print_certificate(document, "ar", stack.printer)

    run = subprocess.run([sys.executable, "-m", "central.cli", "verify", "--key", str(key_path), str(png)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "genuine"
    assert "serial: %s" % document.serial in lines and "kind: civil-status-extract" in lines
    assert "place: %s / %s" % (PLACE["ar"], PLACE["en"]) in lines
    assert "holder: %s %s" % (citizen["given_name_ar"], citizen["family_name_ar"]) in lines
    assert "content digest: %s" % document.content_digest().hex() in lines
    assert "issued: %s" % document.issued_at.replace("Z", "+00:00") in lines
    assert any(line.startswith("key id: ") and len(line) == len("key id: ") + 16 for line in lines)

    # The same payload, read off the paper, with one character changed: not genuine.
    (scanned,) = [code.text for code in zxingcpp.read_barcodes(Image.open(png))]
    assert scanned == document.verification
    altered = text_file(tmp_path, one_character_changed(scanned, in_signature=False))
    run = subprocess.run([sys.executable, "-m", "central.cli", "verify", "--key", str(key_path), str(altered)],
                         cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stdout.startswith("not genuine: ")
    assert len(run.stdout.splitlines()) == 1


def test_a_photo_of_the_page_verifies_too(issue, key_file, simulator, tmp_path, capsys) -> None:
    document = issue("Lina", "birth-certificate", language="en", place=PLACE)
    photo = tmp_path / "photo.jpg"
    Image.open(print_certificate(document, "en", simulator)).convert("RGB").save(photo, quality=85)
    code, lines = verify(capsys, "--key", key_file, photo)
    assert code == 0 and "serial: %s" % document.serial in lines


# --- every reason, one line each ------------------------------------------------------

def test_a_genuine_payload_prints_its_signed_fields(issue, key_file, tmp_path, capsys) -> None:
    document = issue(place=PLACE)
    code, lines = verify(capsys, "--key", key_file, text_file(tmp_path, document.verification))
    assert code == 0
    assert [line.split(":")[0] for line in lines] == ["genuine", "serial", "kind", "issued", "place", "holder",
                                                      "content digest", "key id"]


def test_an_altered_signature_is_a_bad_signature(issue, key_file, tmp_path, capsys) -> None:
    altered = one_character_changed(issue().verification, in_signature=True)
    assert verify(capsys, "--key", key_file, text_file(tmp_path, altered)) == (
        1, ["not genuine: bad_signature: the signature does not verify: the payload was altered or forged"])


def test_a_payload_signed_by_another_key_is_refused(issue, key_file, tmp_path, capsys) -> None:
    document = issue()
    other = Ed25519PrivateKey.generate()
    forged = signing.sign(other, serial=document.serial, kind=document.service_code,
                          issued_at=datetime.fromisoformat(document.issued_at), place=PLACE, holder_ar="x",
                          content_digest=document.content_digest())
    code, lines = verify(capsys, "--key", key_file, text_file(tmp_path, forged))
    assert code == 1 and len(lines) == 1
    assert lines[0].startswith("not genuine: unknown_key: ")
    assert signing.key_id(other.public_key()).hex() in lines[0]


def test_an_older_key_given_as_well_still_verifies(issue, key_file, tmp_path, capsys) -> None:
    older = tmp_path / "older.pem"
    older.write_text(signing.public_key_pem(Ed25519PrivateKey.generate().public_key()), encoding="ascii")
    code, _lines = verify(capsys, "--key", older, "--key", key_file, text_file(tmp_path, issue().verification))
    assert code == 0


@pytest.mark.parametrize("text, reason", [
    ("https://example.invalid/v?x=1", "not_ours"),
    ("KSK1.eyJzbiI6MX0.AAAA", "not_ours"),
    ("KSK2:ABCD", "malformed"),
])
def test_a_payload_that_is_not_ours_is_refused(key_file, tmp_path, capsys, text, reason) -> None:
    code, lines = verify(capsys, "--key", key_file, text_file(tmp_path, text))
    assert code == 1 and len(lines) == 1 and lines[0].startswith("not genuine: %s: " % reason)


def test_an_image_without_a_qr_code_is_refused(key_file, tmp_path, capsys) -> None:
    blank = tmp_path / "blank.png"
    Image.new("L", (576, 400), 255).save(blank)
    assert verify(capsys, "--key", key_file, blank) == (1, ["not genuine: no_qr_code: no QR code found in %s" % blank])


def test_an_image_with_someone_elses_qr_code_is_not_ours(key_file, tmp_path, capsys) -> None:
    path = tmp_path / "other.png"
    qrcode.make("https://example.invalid/").save(path)
    code, lines = verify(capsys, "--key", key_file, path)
    assert code == 1 and lines[0].startswith("not genuine: not_ours: ")


def test_the_document_given_must_have_the_signed_fields(issue, key_file, tmp_path, capsys) -> None:
    document = issue()
    payload = text_file(tmp_path, document.verification)
    as_issued = tmp_path / "document.json"
    as_issued.write_text(json.dumps({"status": "issued", "document": document.to_json()}), encoding="utf-8")
    code, lines = verify(capsys, "--key", key_file, "--document", as_issued, payload)
    assert code == 0 and lines[-1] == "document: its fields are the signed ones"

    edited = document.to_json()
    edited["fields"][1]["value"] = "سامر"                      # the given name, changed on the page
    as_edited = tmp_path / "edited.json"
    as_edited.write_text(json.dumps(edited), encoding="utf-8")
    code, lines = verify(capsys, "--key", key_file, "--document", as_edited, payload)
    assert code == 1 and lines == [
        "not genuine: content_mismatch: the document's fields are not the ones the payload signs"]


@pytest.mark.parametrize("problem", ["missing key", "not a key", "missing file"])
def test_inputs_that_cannot_be_read_exit_2(key_file, tmp_path, capsys, problem) -> None:
    payload = text_file(tmp_path, "KSK2:ABC")
    not_a_key = text_file(tmp_path, "hello", name="not-a-key.pem")
    args = {"missing key": ("--key", tmp_path / "nothing.pem", payload),
            "not a key": ("--key", not_a_key, payload),
            "missing file": ("--key", key_file, tmp_path / "nothing.txt")}[problem]
    code, lines = verify(capsys, *args)
    assert code == 2 and len(lines) == 1 and lines[0].startswith("kiosk-central verify: ")
