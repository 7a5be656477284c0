"""WIDER FACE evaluation: predictions in the WIDER text format, and the official AP."""
