"""Making a partition visible: manifest, `_SUCCESS`, published dates."""
