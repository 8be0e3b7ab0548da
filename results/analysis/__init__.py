"""Analysis over result files: statistics, significance, compare, baseline, fleet, frame, identity."""
