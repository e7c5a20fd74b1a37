"""RQ jobs. A job receives ids (never resolves or creates a session) and runs in a worker
process, never in the web process."""
