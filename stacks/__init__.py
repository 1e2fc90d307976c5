"""Stack configuration, the composition root, the offline engine and the `python -m stacks` CLI."""
