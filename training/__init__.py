"""Training StreamGuard's detectors: face extraction, self-blended images, targets, datasets, losses, loop, evaluation.

Needs the ``[train]`` extra (scikit-learn, dlib-bin, face-recognition-models). Modules, one job each:

- ``faces`` / ``extract``: videos and photos -> aligned face crops + 68 landmarks (``python -m training.extract``);
  ``synthetic``: drawn faces with landmarks, for smoke runs and tests.
- ``sbi``: self-blended images (SBI) and blended images (BI), returning the fake and its blend mask.
- ``targets``: LAA-Net heatmap and self-consistency maps from the blend mask; DeepFidelity fidelity scores.
- ``augment``: crop/flip/colour/JPEG augmentation shared by the datasets.
- ``datasets``: real-faces-only training data (50/50 real/SBI), FaceForensics++ and Celeb-DF layouts, identity splits.
- ``losses``: BCE, focal heatmap, consistency BCE, fidelity regression, weighted by the detector config.
- ``metrics``: ACC, AUC, AP, EER at frame and video level.
- ``train`` / ``evaluate``: the CLIs (``python -m training.train``, ``python -m training.evaluate``); ``common``: what
  they share (config overrides, autocast, batched prediction).
"""
