"""The platform's CrossGuard policy pack; the rules are pure functions in `rules`."""
