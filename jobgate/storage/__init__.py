"""Durable storage of jobs and of the global update log."""
