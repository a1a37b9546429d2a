"""The BentoML service for nizami-1.7b and the recipe that builds its bento."""
