"""The scan page's review in the Flask client: frames grouped by ring in path order, the
valid/invalid filter, the per-scan download, the frame partial with its metadata, previous
and next, mask and a JPEG preview for a TIFF frame."""

from __future__ import annotations

import io
import re

from PIL import Image

from tests.web.conftest import HX
from tests.web.review_support import BLACK_FRAME, INVALID_FRAME, TIFF_FRAME, make_review_scan


def _ids_in(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'data-capture-id="(\d+)"', html)]


def test_scan_page_shows_frames_by_ring_in_path_order(web_app, browser):
    scan = make_review_scan(web_app)
    html = browser.get(f"/scans/{scan.scan_id}").get_data(as_text=True)
    assert "Ring 1 · 20°" in html and "Ring 2 · 45°" in html
    rings = html.split('class="ring"')[1:]
    assert len(rings) == 2
    assert _ids_in(rings[0]) == scan.capture_ids[:3]
    assert _ids_in(rings[1]) == scan.capture_ids[3:]
    assert f'href="/api/v1/scans/{scan.scan_id}/export.zip"' in html
    assert 'src="/static/review.js"' in html and "<script>" not in html
    assert BLACK_FRAME in html


def test_filter_shows_valid_or_invalid_frames_only(web_app, browser):
    scan = make_review_scan(web_app)
    valid = browser.get(f"/scans/{scan.scan_id}/frames?valid=valid", headers=HX)
    assert valid.status_code == 200
    assert _ids_in(valid.get_data(as_text=True)) == [
        c for i, c in enumerate(scan.capture_ids) if i != INVALID_FRAME]
    invalid = browser.get(f"/scans/{scan.scan_id}/frames?valid=invalid", headers=HX)
    assert _ids_in(invalid.get_data(as_text=True)) == [scan.capture_ids[INVALID_FRAME]]
    wrong = browser.get(f"/scans/{scan.scan_id}/frames?valid=maybe", headers=HX)
    assert wrong.status_code == 400
    # Without htmx: the scan page with that filter.
    plain = browser.get(f"/scans/{scan.scan_id}/frames?valid=invalid")
    assert plain.status_code == 302
    assert plain.location.endswith(f"/scans/{scan.scan_id}?valid=invalid")


def test_frame_partial_has_metadata_neighbours_and_mask(web_app, browser):
    scan = make_review_scan(web_app)
    first, second = scan.capture_ids[:2]
    html = browser.get(f"/scans/{scan.scan_id}/frames/{second}", headers=HX).get_data(as_text=True)
    assert "120.0°" in html and "20°" in html
    assert "2026-11-30T10:00:01Z" in html and "8001 µs" in html
    assert "1.50" in html and "1.90 / 1.60" in html and "2.25 dioptres" in html
    assert re.search(rf'href="/scans/{scan.scan_id}/frames/{first}"[^>]*data-prev', html)
    third = scan.capture_ids[2]
    assert re.search(rf'href="/scans/{scan.scan_id}/frames/{third}"[^>]*data-next', html)
    assert f"/scans/{scan.scan_id}/frames/{second}/mask.png" in html
    mask = browser.get(f"/scans/{scan.scan_id}/frames/{second}/mask.png")
    assert mask.status_code == 200 and mask.mimetype == "image/png"
    assert mask.headers["X-Content-Type-Options"] == "nosniff"
    # A frame without a mask has no overlay and no mask to fetch.
    assert "mask.png" not in browser.get(f"/scans/{scan.scan_id}/frames/{third}",
                                         headers=HX).get_data(as_text=True)
    assert browser.get(f"/scans/{scan.scan_id}/frames/{third}/mask.png").status_code == 404


def test_neighbours_follow_the_filter(web_app, browser):
    scan = make_review_scan(web_app)
    before_invalid = scan.capture_ids[INVALID_FRAME - 1]
    html = browser.get(f"/scans/{scan.scan_id}/frames/{before_invalid}?valid=valid",
                       headers=HX).get_data(as_text=True)
    assert "data-next" not in html  # the invalid last frame is filtered out
    html = browser.get(f"/scans/{scan.scan_id}/frames/{before_invalid}",
                       headers=HX).get_data(as_text=True)
    assert re.search(rf'frames/{scan.capture_ids[INVALID_FRAME]}"[^>]*data-next', html)


def test_tiff_frame_gets_a_jpeg_preview(web_app, browser):
    scan = make_review_scan(web_app)
    tiff = scan.capture_ids[TIFF_FRAME]
    html = browser.get(f"/scans/{scan.scan_id}/frames/{tiff}", headers=HX).get_data(as_text=True)
    preview = f"/scans/{scan.scan_id}/frames/{tiff}/preview.jpg"
    assert f'src="{preview}"' in html
    answer = browser.get(preview)
    assert answer.status_code == 200 and answer.mimetype == "image/jpeg"
    with Image.open(io.BytesIO(answer.data)) as img:
        assert img.format == "JPEG" and img.size == (64, 48)
    # A JPEG frame is shown as it is.
    jpeg = scan.capture_ids[0]
    html = browser.get(f"/scans/{scan.scan_id}/frames/{jpeg}", headers=HX).get_data(as_text=True)
    assert "preview.jpg" not in html and "/files/images/scans/" in html


def test_frame_of_another_scan_is_not_found(web_app, browser):
    one, other = make_review_scan(web_app, "One"), make_review_scan(web_app, "Two")
    foreign = other.capture_ids[0]
    for suffix in ("", "/mask.png", "/preview.jpg"):
        answer = browser.get(f"/scans/{one.scan_id}/frames/{foreign}{suffix}", headers=HX)
        assert answer.status_code == 404, suffix


def test_frame_page_without_htmx_is_a_whole_page(web_app, browser):
    scan = make_review_scan(web_app)
    html = browser.get(f"/scans/{scan.scan_id}/frames/{scan.capture_ids[0]}").get_data(as_text=True)
    assert "<!doctype html>" in html and f'href="/scans/{scan.scan_id}"' in html
