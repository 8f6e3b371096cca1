"""Torch modules of the engine, one architecture per file. Imported only by the torch backend and by training."""
