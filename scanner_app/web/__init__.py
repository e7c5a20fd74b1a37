"""Browser pages and HTMX partials. One way to render: scanner_app.web.render.render()."""
