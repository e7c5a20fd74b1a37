"""Shared ground below every feature: database, storage, queues, disk, processes, web helpers."""
