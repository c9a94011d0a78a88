"""What every command shares: the exit-code rule and the words for a failed write."""
