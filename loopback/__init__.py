"""Slack and the LLM on loopback, for the tests and the benchmarks: the Slack Web API double, signed Slack events,
the Bolt app served over HTTP, a scripted LLM server and a tiny random model. Not part of the product."""
