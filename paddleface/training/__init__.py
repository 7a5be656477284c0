"""Training: prior matching, the multibox losses, augmentation and the dygraph trainer."""
