"""Launch scripts: flags -> config -> lib.train."""
