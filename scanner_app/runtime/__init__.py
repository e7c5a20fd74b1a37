"""Processes the station runs for itself: the private Redis server and the all-in-one
supervisor behind `scanner run`."""
