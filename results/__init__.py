"""Result files and everything computed from them. Never imports torch."""
