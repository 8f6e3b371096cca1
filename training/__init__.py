"""Training: every model of a bundle, from a folder of videos."""
