"""Silver: typed, normalised, validated and de-duplicated entity tables (see docs/silver.md)."""
