"""The Perkville hook."""
