"""The checks that the lab report's page renders in a real browser (tests/lab/test_lab_report.py)
fail where they should: a blank screenshot, a page whose ladders did not draw, a question
missing from the text the browser shows. Images are drawn here with Pillow, no browser."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "lab"))

import lab_report  # noqa: E402  (after their folder is on the path)

with warnings.catch_warnings():  # its module's markers are registered by tests/lab's conftest.py
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    import test_lab_report as checks  # noqa: E402

CAPTURES = ROOT / "tests" / "unit" / "captures"
ANSWER_INK, SUCCESS_INK = "#1f4e9c", "#1b7f3a"  # lab_capture.py's responses and 2xx final answers


def page(ladder: bool) -> Image.Image:
    """A report page's top as Chromium draws it: black text, links and a verdict in the page's own
    colours, then (if `ladder`) a ladder's arrows."""
    image = Image.new("RGB", (1280, 2000), "white")
    draw = ImageDraw.Draw(image)
    for row in range(40):
        draw.text((32, 40 + 24 * row), "1.2 A call: INVITE, 100, 180, 200, ACK, BYE " * 2, fill="black")
        draw.text((900, 40 + 24 * row), "capture.pcap", fill="#0000ee")  # a link
        draw.text((1100, 40 + 24 * row), "pass", fill="#006600")  # a verdict
    if ladder:
        for row in range(6):
            draw.line((200, 1100 + 40 * row, 660, 1100 + 40 * row), fill=ANSWER_INK, width=2)
        draw.line((200, 1400, 660, 1400), fill=SUCCESS_INK, width=3)
    return image


def test_a_blank_screenshot_is_told_from_a_drawn_page() -> None:
    blank = Image.new("RGB", (1280, 2000), "white")
    assert checks.distinct_colours(blank) == 1 and checks.non_white_share(blank) == 0
    drawn = page(ladder=True)
    assert checks.distinct_colours(drawn) >= 64 and checks.non_white_share(drawn) >= 0.01


def test_a_ladder_shows_by_its_own_inks_not_by_the_pages_links_and_verdicts() -> None:
    for ink in (ANSWER_INK, SUCCESS_INK):
        assert checks.pixels_in_hue(page(ladder=False), ink) < 100
        assert checks.pixels_in_hue(page(ladder=True), ink) >= 100


def test_the_inks_of_a_ladder_are_its_coloured_answers() -> None:
    parties = [{"name": "amine", "address": "172.30.250.110"}, {"name": "chhiny", "address": "172.30.250.111"}]
    saved = [(CAPTURES / f"call.{read}").read_text() for read in ("sip.json", "media.json", "rtp-streams.txt")]
    svg = lab_report._lab_capture().evidence(*saved, parties, "1.2")["ladder_svg"]
    assert checks.ladder_inks(svg) == {ANSWER_INK, SUCCESS_INK}


def test_the_text_shown_is_the_bodys_without_style_and_a_missing_question_is_missing() -> None:
    shown = checks.Shown(
        "<html><head><title>1.3-busy A busy callee</title><style>h2{color:red}</style></head><body>"
        '<h2>1.2 A call:\n  INVITE</h2><img src="1.2/ladder.svg"><script>"1.3-cancel"</script></body></html>'
    )
    assert shown.text == "1.2 A call: INVITE"
    assert shown.images == ["1.2/ladder.svg"]
    assert "1.3-busy" not in shown.text and "1.3-cancel" not in shown.text
