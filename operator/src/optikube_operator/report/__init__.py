"""The job-level HTML report of a run (the trainer writes its own per-pipeline report)."""
