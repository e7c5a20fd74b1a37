"""Uploads: intake, claims, processing on the uploads queue, recovery, pages, API."""
