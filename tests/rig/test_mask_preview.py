"""The preview's mask: a real `scanner worker` on the mock rig publishes, with each preview
frame's framing overlay, the outline of what a scan would cut out as the object, computed
with hal/masks.py against the background plate of the default profile's set-up (found through
scans/service.py). Its filled outline covers the mock object's true silhouette."""

from __future__ import annotations

import cv2
import numpy as np

from hal import load_rig
from hal.masks import mask_iou
from scanner_app.rig import channel
from scanner_app.rig.mask_preview import MaskPreview
from scanner_app.rig.preview_job import PREVIEW_SIZE
from scanner_app.scans import service as scans
from scanner_app.scans.plates import Plates
from scanner_app.scans.poses import camera_model
from tests.support import wait_until


def _filled(outlines: list, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    canvas = np.zeros((h, w), np.uint8)
    polys = [np.round(np.array(p, float) * [w, h]).astype(np.int32) for p in outlines]
    cv2.fillPoly(canvas, polys, 1)
    return canvas.astype(bool)


def test_the_preview_publishes_the_objects_mask(make_station) -> None:
    station = make_station()
    with station.app.app_context(), load_rig(station.hal) as rig:
        # No plate yet: the mask falls back to the backdrop, and says so.
        assert MaskPreview(rig, PREVIEW_SIZE).source == "backdrop"
        # The plate a scan of the default profile takes (the empty platter, at its size).
        size = tuple(scans.profile_for(None).resolution)
        model = camera_model(station.data_dir, rig.camera.describe(), size)
        elevation = model.elevation_of(None)
        rig.camera.set_resolution(size)
        rig.light.on()
        rig.camera.lock_exposure()
        Plates(station.data_dir, model, size).take(rig, elevation)
        found = scans.background_plate(rig.camera.describe())
        assert found is not None and found.elevation_deg == elevation
        scene = rig.camera.scene

    station.start_worker()
    channel.watch(station.redis, 60)  # as an open stream keeps doing
    assert station.client.get("/station/preview.jpg").status_code == 200

    def masked() -> dict | None:
        meta = channel.frame_meta(station.redis)
        mask = ((meta or {}).get("overlay") or {}).get("mask")
        return meta if mask and mask["source"] == "plate" and mask["outlines"] else None

    meta = wait_until(masked, 30, f"a preview frame with its mask ({station.log('worker')})")
    overlay = meta["overlay"]
    assert overlay["centre"] and overlay["rim"]  # the framing overlay is still there
    published = _filled(overlay["mask"]["outlines"], PREVIEW_SIZE)
    truth = scene.render(None, meta["angle_deg"], PREVIEW_SIZE).mask
    covered = (published & truth).sum() / truth.sum()
    assert covered >= 0.9, covered
    assert mask_iou(published, truth) >= 0.8, mask_iou(published, truth)
    channel.watch(station.redis, 0.01)
    station.wait_preview_gone()
