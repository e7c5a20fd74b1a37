"""`scanner hal calibrate` and `scanner hal mock-object`, run as real commands on the mock rig."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import pytest

from hal.calibration import load_calibration
from hal.mock.scene import DEFAULT_GEOMETRY, DEFAULT_INTRINSICS
from tests.support import run_cli


def test_calibrate_recovers_the_mock_rig_and_saves_it_as_current(data_dir: Path) -> None:
    done = run_cli(data_dir, "hal", "calibrate", "--views", "8", timeout=180,
                   SCANNER_MOCK_RESOLUTION="1280x960")
    assert done.returncode == 0, done.stderr
    assert "Photo 8 of 8" in done.stdout
    assert "Reprojection error (RMS)" in done.stdout
    current = load_calibration(data_dir / "calibration" / "current.json")
    kept = load_calibration(data_dir / "calibration" / f"{current.id}.json")
    assert kept == current
    assert f"Saved calibration {current.id}" in done.stdout
    # The numbers: focal length within 0.5 %, distance 1 %, elevation 0.3 degrees.
    assert current.intrinsics.fx == pytest.approx(DEFAULT_INTRINSICS.fx, rel=0.005)
    assert current.geometry.distance_m == pytest.approx(DEFAULT_GEOMETRY.distance_m, rel=0.01)
    assert current.geometry.elevation_deg == pytest.approx(DEFAULT_GEOMETRY.elevation_deg,
                                                           abs=0.3)
    assert f"{current.intrinsics.fx:.1f} px" in done.stdout


def test_calibrate_says_in_one_sentence_when_the_board_is_not_found(data_dir: Path) -> None:
    # At 64x48 pixels the board's squares are too small to find.
    done = run_cli(data_dir, "hal", "calibrate", "--views", "4", timeout=120,
                   SCANNER_MOCK_RESOLUTION="64x48")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "The calibration board was not found in 4 of 4 photos" in done.stderr
    assert not (data_dir / "calibration" / "current.json").exists()


def test_mock_object_writes_the_true_mesh_as_binary_gltf(tmp_path: Path,
                                                         data_dir: Path) -> None:
    out = tmp_path / "mug.glb"
    done = run_cli(data_dir, "hal", "mock-object", str(out))
    assert done.returncode == 0, done.stderr
    data = out.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data)
    assert (magic, version, length) == (b"glTF", 2, len(data))
    chunk_len, chunk_type = struct.unpack_from("<I4s", data, 12)
    gltf = json.loads(data[20:20 + chunk_len])
    assert chunk_type == b"JSON"
    position = gltf["meshes"][0]["primitives"][0]["attributes"]["POSITION"]
    top = gltf["accessors"][position]["max"][2]
    assert top == pytest.approx(0.085, abs=0.005)  # the mug, 8.5 cm tall, Z up in metres
