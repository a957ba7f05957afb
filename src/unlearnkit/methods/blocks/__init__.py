"""Building blocks the methods share: the method registry and data use, no-op detection, parameter
selection, the request state of a stream, gradient sums, forget objectives, and the private parts of
single methods (dist_match statistics, instance_adv terms, last-layer training). None is a method."""
