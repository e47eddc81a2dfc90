"""Writing motion out of the toolkit in other programs' formats: BVH and glTF binary (GLB)."""
