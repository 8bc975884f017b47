"""What every V5 service shares."""
