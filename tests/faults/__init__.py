"""The fault suite: real faults (SIGKILL, SIGSTOP, a killed database) injected while clients work,
each case asserting that no accepted job is lost or run twice and no job that ran fails."""
