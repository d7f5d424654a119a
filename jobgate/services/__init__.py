"""Services: the only code that changes jobs, and the code that reads them for callers."""
