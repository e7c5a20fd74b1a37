"""`python -m scanner_app.cli ...` is `scanner ...`; `scanner run` starts its parts this way so
they use the same Python and installation as itself."""

from scanner_app.cli import main

main()
