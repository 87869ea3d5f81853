"""Searches beyond the grid: sampled spaces (random, TPE) and early stopping of trials, as pure
functions of what the store has recorded (no database, no HTTP here)."""
