"""The printer simulator: its decoder on hand-built streams and on garbage,
its renderer, and its TCP side (jobs, cuts, status answers)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import zxingcpp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from drivers.printer_sim import cli
from drivers.printer_sim.decoder import (
    Command, Cut, DecodeError, Decoder, Feed, QrCode, RasterImage, Skipped, StatusQuery, TextLine,
    Truncated, decode,
)
from drivers.printer_sim.renderer import render
from drivers.printer_sim.server import PaperLevel, PrinterSimulator

pytestmark = pytest.mark.realstack   # pcscd, the simulators, central or Xvfb: see README

ESC, GS, DLE = b"\x1b", b"\x1d", b"\x10"


def qr_commands(data: bytes, size: int = 4, ec: int = 49) -> bytes:
    def fn(body: bytes) -> bytes:
        return GS + b"(k" + len(body).to_bytes(2, "little") + body
    return (fn(b"1A2\x00") + fn(b"1C" + bytes([size])) + fn(b"1E" + bytes([ec]))
            + fn(b"1P0" + data) + fn(b"1Q0"))


def raster(width_bytes: int, rows: list[bytes]) -> bytes:
    return GS + b"v0\x00" + width_bytes.to_bytes(2, "little") + len(rows).to_bytes(2, "little") + b"".join(rows)


# A job like the driver sends: init, text, image, QR, feed, cut.
VALID_JOB = (ESC + b"@" + ESC + b"a\x01" + ESC + b"t\x00" + b"HELLO\n" + ESC + b"E\x01" + b"BOLD\n"
             + raster(2, [b"\xf0\x0f", b"\x0f\xf0"]) + qr_commands(b"https://example.invalid/v?x=1")
             + ESC + b"d\x03" + GS + b"V\x00")


# --- decoder: hand-built streams ----------------------------------------------------

def test_text_lines_carry_alignment_and_emphasis():
    elements = decode(ESC + b"@" + ESC + b"a\x01" + b"Title\n" + ESC + b"a\x02" + ESC + b"E\x01" + b"Right\n"
                      + ESC + b"!\x30" + b"Big\n" + GS + b"!\x11" + b"Double\n", strict=True)

    lines = [e for e in elements if isinstance(e, TextLine)]
    assert lines == [
        TextLine("Title", align="center"),
        TextLine("Right", align="right", bold=True),
        TextLine("Big", align="right", bold=False, width=2, height=2),
        TextLine("Double", align="right", width=2, height=2),
    ]
    assert elements[0] == Command("init")


def test_raster_image_keeps_its_size_and_bits():
    (image,) = [e for e in decode(raster(2, [b"\x80\x01", b"\xff\x00"]), strict=True) if isinstance(e, RasterImage)]

    assert (image.width, image.height, image.source) == (16, 2, "GS v 0")
    picture = image.to_image()
    assert picture.getpixel((0, 0)) == 0 and picture.getpixel((1, 0)) == 255 and picture.getpixel((15, 0)) == 0
    assert [picture.getpixel((x, 1)) for x in (0, 7, 8)] == [0, 0, 255]


def test_esc_star_band_becomes_an_image_without_a_blank_line():
    # 24-dot double density, 2 columns: first column has its top dot, second its bottom dot.
    stream = ESC + b"3\x10" + ESC + b"*\x21\x02\x00" + b"\x80\x00\x00" + b"\x00\x00\x01" + b"\n" + ESC + b"2"

    elements = decode(stream, strict=True)

    assert not any(isinstance(e, TextLine) for e in elements)
    (band,) = [e for e in elements if isinstance(e, RasterImage)]
    picture = band.to_image()
    assert (band.width, band.height) == (2, 24)
    assert picture.getpixel((0, 0)) == 0 and picture.getpixel((1, 23)) == 0 and picture.getpixel((1, 0)) == 255


def test_qr_code_keeps_data_module_size_and_level():
    elements = decode(ESC + b"a\x01" + qr_commands(b"payload-123", size=7, ec=50), strict=True)

    assert QrCode(b"payload-123", module_size=7, ec_level="Q", model=2, align="center") in elements


def test_cuts_feeds_and_status_queries():
    elements = decode(ESC + b"d\x04" + GS + b"V\x00" + GS + b"VB\x00" + DLE + b"\x04\x01" + DLE + b"\x04\x04",
                      strict=True)

    assert elements == [Feed(lines=4), Cut(partial=False), Cut(partial=True), StatusQuery(1), StatusQuery(4)]


def test_pending_text_is_printed_before_an_image():
    elements = decode(b"no newline" + raster(1, [b"\xff"]), strict=True)

    assert isinstance(elements[0], TextLine) and isinstance(elements[1], RasterImage)


def test_unknown_commands_are_skipped_and_text_goes_on():
    elements = decode(ESC + b"\x01" + b"A\n" + b"\x07" + b"B\n")

    assert elements == [Skipped(ESC + b"\x01"), TextLine("A"), Skipped(b"\x07"), TextLine("B")]
    with pytest.raises(DecodeError):
        decode(ESC + b"\x01", strict=True)


def test_known_commands_that_draw_nothing_are_skipped_by_their_length():
    # ESC p (drawer pulse, 5 bytes) and GS ( E (pL pH length) swallow their parameters, "A" is text.
    elements = decode(ESC + b"p\x00\x19\xfa" + GS + b"(E\x03\x00\x01\x41\x41" + b"A\n", strict=True)

    assert elements[-1] == TextLine("A")
    assert [e.name for e in elements[:-1]] == ["pulse", "gs_paren_E"]


def test_truncated_image_prints_its_whole_rows():
    elements = decode(raster(2, [b"\xff\xff", b"\x00\x00", b"\xff\xff"])[:-1])

    assert isinstance(elements[-1], Truncated)
    assert [(e.width, e.height) for e in elements if isinstance(e, RasterImage)] == [(16, 2)]
    with pytest.raises(DecodeError):
        decode(raster(2, [b"\xff\xff"])[:-1], strict=True)


def test_byte_by_byte_feeding_equals_one_shot():
    decoder = Decoder()
    elements = []
    for index in range(len(VALID_JOB)):
        elements += [d.element for d in decoder.feed(VALID_JOB[index:index + 1])]
    elements += [d.element for d in decoder.finish()]

    assert elements == decode(VALID_JOB, strict=True)


def test_element_end_offsets_point_past_their_bytes():
    decoder = Decoder()
    decoded = decoder.feed(b"AB\n" + GS + b"V\x00" + b"C")

    assert [(type(d.element).__name__, d.end) for d in decoded] == [("TextLine", 3), ("Cut", 6)]


# --- decoder: garbage never crashes it --------------------------------------------------

def _decode_checked(data: bytes) -> None:
    elements = decode(data)                      # lenient: never raises
    assert all(element is not None for element in elements)
    try:
        decode(data, strict=True)                # strict: only its own error
    except DecodeError:
        pass


@settings(max_examples=400, deadline=None, database=None)
@given(st.binary(max_size=2048))
def test_fuzz_random_bytes(data):
    _decode_checked(data)


@st.composite
def mutated_jobs(draw) -> bytes:
    data = bytearray(VALID_JOB)
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "command"]))
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 8))]
        elif kind == "truncate":
            del data[at:]
        else:                                    # a command prefix with random parameters
            data[at:at] = draw(st.sampled_from([ESC, GS, DLE, b"\x1c"])) + draw(st.binary(min_size=1, max_size=6))
    return bytes(data)


@settings(max_examples=400, deadline=None, database=None)
@given(mutated_jobs())
def test_fuzz_mutated_jobs(data):
    _decode_checked(data)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_jobs(), st.lists(st.integers(1, 64), min_size=1, max_size=20))
def test_fuzz_chunked_feeding_equals_one_shot_and_renders(data, cuts):
    decoder = Decoder()
    elements, position = [], 0
    for size in cuts:
        elements += [d.element for d in decoder.feed(data[position:position + size])]
        position += size
    elements += [d.element for d in decoder.feed(data[position:])] + [d.element for d in decoder.finish()]

    assert elements == decode(data)
    page = render(elements)
    assert page.width == 576


# --- renderer ----------------------------------------------------------------------------

def test_render_draws_text_image_qr_and_a_dashed_cut():
    page = render(decode(VALID_JOB))

    assert page.width == 576
    assert [r.text for r in zxingcpp.read_barcodes(page)] == ["https://example.invalid/v?x=1"]
    last_rows = [page.crop((0, y, 576, y + 1)) for y in range(page.height - 24, page.height)]
    assert any(0 < sum(row.histogram()[:128]) < 576 for row in last_rows)    # dashes, not a solid line


def test_feed_by_dots_renders_as_exactly_that_many_white_rows():
    # Two bands with ESC J 40 and ESC J 255 + 5 between them draw the same page as one image with those rows white.
    ink = b"\xff" * 72
    white = b"\x00" * 72
    fed = render(decode(raster(72, [ink] * 3) + ESC + b"J\x28" + raster(72, [ink] * 2)
                        + ESC + b"J\xff" + ESC + b"J\x05" + raster(72, [ink]), strict=True))
    whole = render(decode(raster(72, [ink] * 3 + [white] * 40 + [ink] * 2 + [white] * 260 + [ink]), strict=True))

    assert fed.size == whole.size == (576, 306)
    assert fed.tobytes() == whole.tobytes()


def test_render_marks_an_impossible_qr_instead_of_failing():
    page = render([QrCode(b"x" * 5000, module_size=4)])

    assert page.width == 576 and page.height > 0


# --- the TCP printer ----------------------------------------------------------------------

@pytest.fixture
def simulator(tmp_path: Path):
    with PrinterSimulator(tmp_path) as sim:
        yield sim


def send(simulator: PrinterSimulator, data: bytes, *, read: int = 0) -> bytes:
    with socket.create_connection(("127.0.0.1", simulator.port), timeout=2) as link:
        link.sendall(data)
        answer = b""
        while len(answer) < read:
            answer += link.recv(16)
        return answer


def test_each_cut_ends_a_job_with_its_png_and_bytes(simulator, tmp_path):
    send(simulator, VALID_JOB + b"SECOND\n" + GS + b"V\x01")

    first, second = simulator.wait_for_jobs(2)
    assert first.raw == VALID_JOB and first.complete
    assert (tmp_path / "job-0001.bin").read_bytes() == VALID_JOB
    with Image.open(tmp_path / "job-0001.png") as page:
        assert page.width == 576
    # Settings outlive a cut, as on a printer: still centred and bold.
    assert second.text_lines == [TextLine("SECOND", align="center", bold=True)]
    assert second.cuts == [Cut(partial=True)]


def test_a_connection_without_content_writes_no_job(simulator):
    send(simulator, ESC + b"@" + DLE + b"\x04\x01", read=1)

    simulator.wait_for_connections(1)
    assert simulator.jobs == []


def test_a_job_without_cut_is_written_when_the_client_closes(simulator):
    send(simulator, b"no cut\n")

    (job,) = simulator.wait_for_jobs(1)
    assert not job.complete and job.text_lines == [TextLine("no cut")]


@pytest.mark.parametrize("paper, cover_open, answers", [
    (PaperLevel.OK, False, b"\x12\x12\x12"),
    (PaperLevel.NEAR_END, False, b"\x12\x12\x1e"),
    (PaperLevel.OUT, False, b"\x1a\x32\x7e"),
    (PaperLevel.OK, True, b"\x1a\x16\x12"),
])
def test_status_queries_are_answered_from_the_simulated_state(simulator, paper, cover_open, answers):
    simulator.set_paper(paper)
    simulator.set_cover_open(cover_open)

    assert send(simulator, DLE + b"\x04\x01" + DLE + b"\x04\x02" + DLE + b"\x04\x04", read=3) == answers


def test_status_query_inside_image_data_is_not_answered(simulator):
    # The bytes 10 04 01 inside a raster are dots, not a query.
    send(simulator, raster(3, [b"\x10\x04\x01"]) + GS + b"V\x00")

    (job,) = simulator.wait_for_jobs(1)
    assert not any(isinstance(e, StatusQuery) for e in job.elements)


def test_cli_registers_the_printer_command():
    import argparse
    parser = argparse.ArgumentParser()
    cli.register(parser.add_subparsers(dest="command"))

    args = parser.parse_args(["printer", "--out", "/tmp/x", "--port", "9101"])

    assert (args.out, args.host, args.port, args.run) == (Path("/tmp/x"), "127.0.0.1", 9101, cli.run)
