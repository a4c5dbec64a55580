"""Analyses of checkpoints (what changed between two encoders), as opposed to scores on tasks."""
