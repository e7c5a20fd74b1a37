"""Sessions: the one resolver, the service, counters, session.json, pages, API and downloads."""
