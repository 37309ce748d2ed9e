"""The project holders' platform: projects of the diaspora, and partners' interest in them."""
