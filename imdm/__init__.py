"""The I-MDM recognizer, triplet mining, co-training and recognizer training loops, metrics."""
