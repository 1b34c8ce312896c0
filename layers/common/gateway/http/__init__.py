"""HTTP edge: resolver factory, identity from JWT claims, and the one error mapper."""
