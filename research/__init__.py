"""Research projects: one folder per paper, composed from lib."""
