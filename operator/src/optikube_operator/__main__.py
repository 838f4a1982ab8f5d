"""`python -m optikube_operator ...` is the `optikube` command (the container's entry point too)."""

from optikube_operator.cli.main import main

main()
