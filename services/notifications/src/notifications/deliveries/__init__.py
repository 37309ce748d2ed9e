"""Deliveries: from "tell this person" to messages sent on email, SMS or the in-app
inbox, with retries and fallback; the delivery log and resends."""
