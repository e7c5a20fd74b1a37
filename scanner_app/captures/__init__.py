"""Captures: listing a session's images and serving their files and thumbnails."""
