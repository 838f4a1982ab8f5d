"""Local mode: the orchestration core driving `torchrun` subprocesses on this machine."""
