"""The torch engine: training (one trial or a pack), checkpoints, predictions, exports, samples."""
