"""The Perkville batch operators."""
