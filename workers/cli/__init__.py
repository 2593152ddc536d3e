"""The ``ricochet`` command: flag parsing (``main``) and what each command does."""
