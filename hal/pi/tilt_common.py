"""Shared by the Pi tilt drivers."""

# Homing may travel this far past the full range before it gives up on the switch.
HOME_OVERRUN_DEG = 10.0
