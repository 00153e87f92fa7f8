"""The rules service: versioned rule streams, and which rule version fires on an event."""
