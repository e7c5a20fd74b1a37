"""The idle rig from the browser: live preview and manual controls (issue 14)."""
