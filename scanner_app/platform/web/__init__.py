"""Web helpers every slice uses: one render path, htmx detection, JSON bodies, form helpers."""
