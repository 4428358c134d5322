"""Future Token Prediction (Walker, 2024): encoder -> pseudo-sequence -> decoder of N tokens."""
