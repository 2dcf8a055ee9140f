"""The sweep report: plots, summary.json and summary.md from the sweep's store."""
