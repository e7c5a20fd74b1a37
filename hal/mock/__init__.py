"""Simulated drivers: behave like the hardware (they take time, fail, hold state)."""
