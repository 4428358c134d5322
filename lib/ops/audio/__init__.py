"""Home of the audio family (speech and music: features, separation, enhancement, recognition); filled by the coming papers."""
