"""Issue 9, finding 7: a small PNG that announces 13000 × 13000 pixels was accepted as valid
and took gigabytes of worker memory to decode. Now the header is read first and an image
over the configured cap (SCANNER_MAX_IMAGE_MEGAPIXELS, default 100) is invalid, with a
sentence, and never decoded."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

from scanner_app.config import ConfigError, load_settings
from tests.conftest import build_app
from tests.support import PROJECT_ROOT, api_client, dispose, jpeg_bytes, station_env

SIDE = 13000


def png_header_only_cost(width: int, height: int) -> bytes:
    """A real, complete 1-bit greyscale PNG of width × height white pixels: tens of KB on
    disk, width × height bytes once Pillow decodes it (mode "1" keeps a byte per pixel,
    255 here: written memory, which the decode's peak RSS shows)."""
    row = b"\x00" + b"\xff" * ((width + 7) // 8)  # filter type 0, then the packed bits
    packer = zlib.compressobj(9)
    data = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data)
            + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("png") / "huge.png"
    path.write_bytes(png_header_only_cost(SIDE, SIDE))
    return path


# Run in a fresh interpreter so its peak memory (ru_maxrss) is the check's and nothing else's.
MEASURE = """
import json, resource, sys
from scanner_app import create_app
from scanner_app.config import load_settings
from scanner_app.uploads.files.image_check import check_image

app = create_app(load_settings())
with app.app_context(), open(sys.argv[1], "rb") as handle:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    check = check_image(handle)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"valid": check.valid, "reason": check.reason, "grew_kb": after - before}))
"""


def measure(path: Path, data_dir: Path, **env: str) -> dict:
    done = subprocess.run([sys.executable, "-c", MEASURE, str(path)], capture_output=True,
                          text=True, timeout=120, cwd=PROJECT_ROOT,
                          env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(PROJECT_ROOT),
                               **station_env(data_dir, **env)})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_png_really_is_that_large(huge_png):
    from PIL import Image

    assert huge_png.stat().st_size < 700_000  # the report's was 657 KB
    with Image.open(huge_png) as img:  # the header only
        assert img.size == (SIDE, SIDE) and img.mode == "1"


def test_a_13000_square_png_is_invalid_and_never_decoded(huge_png, data_dir):
    result = measure(huge_png, data_dir)
    assert result["valid"] is False
    assert result["reason"] == (
        "The image is 13000 × 13000 pixels (169 megapixels), more than this station decodes "
        "(100 megapixels); send a smaller image or raise SCANNER_MAX_IMAGE_MEGAPIXELS.")
    # Decoding would take 169 MB (mode "1"); reading the header takes next to nothing.
    assert result["grew_kb"] < 30_000, result


def test_a_raised_cap_decodes_it(huge_png, data_dir):
    """The control: with room for it, the same file is decoded in full (valid), so the cap
    and nothing else is what refused it above. (Its peak memory is not asserted: the kernel
    may hand Pillow's zeroed buffer over without the pages being counted, so the figure
    varies from run to run between 0 and the decode's 169 MB.)"""
    result = measure(huge_png, data_dir, SCANNER_MAX_IMAGE_MEGAPIXELS="200")
    assert result["valid"] is True, result
    assert result["reason"] is None, result


def test_an_upload_over_the_cap_is_an_invalid_capture_with_the_sentence(data_dir, huge_png):
    app = build_app(data_dir)
    try:
        client = api_client(app)
        answer = client.post("/api/v1/uploads", data={"files": [
            (io.BytesIO(huge_png.read_bytes()), "huge.png"),
            (io.BytesIO(jpeg_bytes()), "fine.jpg")]}, content_type="multipart/form-data")
        assert answer.status_code == 201, answer.get_data(as_text=True)
        session_id = answer.get_json()["session_id"]
        captures = client.get(f"/api/v1/sessions/{session_id}/captures").get_json()["captures"]
        by_name = {Path(c["path"]).name: c for c in captures}
        assert by_name["huge.png"]["valid"] is False
        assert "13000 × 13000 pixels" in by_name["huge.png"]["reason"]
        assert by_name["fine.jpg"]["valid"] is True
    finally:
        dispose(app)


def test_the_cap_is_a_setting(data_dir, tmp_path):
    # 64 × 48 = 3072 pixels: exactly at a cap of 0.003072 MP is fine, one pixel over is not.
    for cap, valid in (("0.003072", True), ("0.003071", False)):
        app = build_app(data_dir / cap, SCANNER_MAX_IMAGE_MEGAPIXELS=cap)
        try:
            client = api_client(app)
            answer = client.post("/api/v1/uploads", data={"files": [
                (io.BytesIO(jpeg_bytes()), "small.jpg")]}, content_type="multipart/form-data")
            [upload] = answer.get_json()["uploads"]
            assert (upload["valid_count"], upload["invalid_count"]) == (
                (1, 0) if valid else (0, 1)), (cap, upload)
        finally:
            dispose(app)

    assert load_settings(env=station_env(data_dir)).max_image_megapixels == 100
    config = tmp_path / "config"
    config.mkdir()
    (config / "scanner.toml").write_text("[station]\nmax_image_megapixels = 24\n")
    assert load_settings(env=station_env(data_dir), config_dir=config
                         ).max_image_megapixels == 24
    for bad in ("lots", "0", "-5", "nan", "inf"):
        with pytest.raises(ConfigError, match="SCANNER_MAX_IMAGE_MEGAPIXELS"):
            load_settings(env=station_env(data_dir, SCANNER_MAX_IMAGE_MEGAPIXELS=bad))
