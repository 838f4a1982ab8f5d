"""The documents a job leaves behind, worded once for every place that shows them.

`job_text` and `pipeline_text` say what a job and its final pipeline did (sentences, tables, a
failed job's cause and what to do); `job_html` and `pipeline_html` lay those words out as the two
report.html files; the CLI's terminal summary uses the same words. Nothing here needs torch or
Optuna to import (tests/unit/reports): the wording reads the results documents, not the models.
"""
