"""Benchmarks for the station's speed and memory targets (run by `make bench`, i.e.
`python -m bench`). Each module bench/<name>.py has `main(argv=None) -> int`: it prints its
measurements and returns 0 when the target is met, non-zero otherwise."""
