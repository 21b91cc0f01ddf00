"""The users & items API service."""
