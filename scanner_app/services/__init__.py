"""Services: what views, jobs and CLI commands call. They know the database and storage,
and the hardware only through hal/ interfaces."""
