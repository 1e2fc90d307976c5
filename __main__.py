"""Pulumi entry point: the real CLI runs this file. Everything lives in the `stacks` package."""

from stacks.program import main

main()
