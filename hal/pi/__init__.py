"""Raspberry Pi drivers: gpiozero for the motor, light and button, Picamera2 for the camera.

Only imported through hal.factory when SCANNER_HAL=pi. picamera2 is imported inside
hal.pi.camera when the camera opens, never at import time.
"""
