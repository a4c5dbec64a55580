"""Task kinds: how to encode examples, which head, how to decode and score."""
