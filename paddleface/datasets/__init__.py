"""WIDER FACE labels, the VOC tree the trainer reads, and the dataset class over it."""
