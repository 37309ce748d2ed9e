"""A person's preferences (channels, quiet hours, opt-outs, consents), the message
categories, and their in-app inbox."""
