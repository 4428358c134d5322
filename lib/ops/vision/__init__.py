"""Home of the vision family (patches, image attention, implicit representations, image metrics); filled by the coming papers."""
