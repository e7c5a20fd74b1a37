"""Scans: starting and controlling them, the RQ job that drives the rig, recovery, pages, API."""
