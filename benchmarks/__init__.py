"""Scripts that measure skae against PCA; never imported by skae or its tests."""
