"""JSON API under /api/v1 (CONTRACT "HTTP API"). Views only parse, call a service, answer."""
