"""The `optikube` command line."""
