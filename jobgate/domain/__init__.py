"""The Job model and its rules: plain data and pure functions, no I/O."""
