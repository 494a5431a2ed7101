"""Rate, token and concurrency limits shared by every process, and the login throttle."""
