"""Training recipe for the kiosk's own expression model (needs the ``train`` extra: PyTorch CPU).

    make train-model            # = python -m models.train, then python -m models.train.export

See docs/models.md ("Our model") for the recipe, its figures and wall time.
"""
