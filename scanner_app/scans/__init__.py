"""Scans: starting and controlling them, the RQ job that drives the rig, recovery, pages, API."""

# What scans add to other slices' events (a merge moves their metadata files).
from scanner_app.scans import metadata as _metadata_hooks  # noqa: E402, F401
