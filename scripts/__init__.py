"""The pipeline steps that ``dodo.py`` declares: one module per step."""
