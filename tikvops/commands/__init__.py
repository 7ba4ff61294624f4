"""Subcommands of the tikvops command line, one module each."""
