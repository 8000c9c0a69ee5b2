"""Risk and the regulator's view: portfolio analytics, expected credit loss, stress, early warning."""
