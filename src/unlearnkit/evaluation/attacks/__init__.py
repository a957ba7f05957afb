"""Membership attacks. Each takes any model and data; none knows about unlearning methods."""
