"""Datasets for training and evaluating the Foley model.

`foley_real` builds a real-sound Foley dataset: real recordings from Debian packages (0 A.D.'s sound effects first),
placed at the exact frames of rendered scenes whose visible events cause them, drawn with the same package's art.
`python -m training.datasets.foley_real build --out DIR --seed S`; see docs/dataset.md.
"""
